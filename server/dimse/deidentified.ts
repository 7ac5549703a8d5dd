import { newCaller, type Caller, type Principal } from '../access.js';
import type { Research } from '../deid/research.js';
import { hasView, type Presenter } from '../present.js';

// A calling AE whose principal gets a de-identified view (server/deid/research.ts:
// a role named in DEID_VIEWS, `researcher` out of the box) is refused C-FIND,
// C-GET, C-MOVE and storage commitment: those services match on, and send,
// original identifiers and stored bytes, and a caller of a de-identified view
// must reach no original value through any protocol. HTTP serves such a caller
// its view; over DIMSE it gets nothing rather than the originals.

/**
 * The status a refused operation is answered with: 0x0124, Refused: Not
 * Authorized (PS3.7 Annex C), a general status every DIMSE-C service may
 * return. The C-FIND, C-GET and C-MOVE tables (PS3.4 Tables C.4-1, C.4-2,
 * C.4-3) offer only Out of Resources (A7xx), a mismatched identifier (A900)
 * and Unable to Process (Cxxx), none of which says the caller may not.
 */
export const NOT_AUTHORIZED = 0x0124;

/** The Error Comment (0000,0902) of the refusal: at most 64 characters. */
export const DEIDENTIFIED_REFUSAL = 'de-identified view: not served over DIMSE; use DICOMweb';

/** Whether `caller` reads through a de-identified view, so that DIMSE must refuse it what it reads. */
export function readsDeidentified(deps: { research?: Research; presenter?: Presenter }, caller: Caller): boolean {
  return hasView(deps, caller) || deps.research?.viewOf(caller) !== undefined;
}

/**
 * What to tell whoever registers an AE whose roles give it a de-identified
 * view under this configuration, or undefined when they do not.
 */
export function deidentifiedAeWarning(research: Research | undefined, title: string, principal: Principal): string | undefined {
  const caller = newCaller(principal, { protocol: 'dimse', callingAe: title, address: null });
  if (research?.viewOf(caller) === undefined) return undefined;
  return (
    `AE ${title}: its roles (${principal.roles.join(',')}) read through a de-identified view, which DIMSE does not serve: ` +
    'its C-FIND, C-GET, C-MOVE and storage commitment are refused (0x0124); use DICOMweb for de-identified access'
  );
}
