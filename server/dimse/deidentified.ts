import { newCaller, type Caller, type Principal } from '../access.js';
import type { Research } from '../deid/research.js';
import { hasView, type Presenter } from '../present.js';

// A calling AE whose principal gets a de-identified view (server/deid/research.ts:
// a role named in DEID_VIEWS, `researcher` out of the box) is served that view
// over DIMSE as over DICOMweb: C-FIND matches on what the view shows
// (server/dimse/find.ts), C-GET and C-MOVE take pseudonymous UIDs and send
// de-identified instances (server/dimse/retrieve.ts). What cannot be served
// in the view is refused rather than answered with originals: storage
// commitment (which tells whether an original UID is held) for such an AE
// that may not store, and every operation for a caller whose view is not one
// Cairn's de-identification applies.

/**
 * The status a refused operation is answered with: 0x0124, Refused: Not
 * Authorized (PS3.7 Annex C), a general status every DIMSE-C service may
 * return. The C-FIND, C-GET and C-MOVE tables (PS3.4 Tables C.4-1, C.4-2,
 * C.4-3) offer only Out of Resources (A7xx), a mismatched identifier (A900)
 * and Unable to Process (Cxxx), none of which says the caller may not.
 */
export const NOT_AUTHORIZED = 0x0124;

/** The Error Comment (0000,0902) of the refusal: at most 64 characters. */
export const DEIDENTIFIED_REFUSAL = 'not served to a de-identified view';

/** Whether `caller` reads through a de-identified view (then DIMSE serves it that view, or refuses). */
export function readsDeidentified(deps: { research?: Research; presenter?: Presenter }, caller: Caller): boolean {
  return hasView(deps, caller) || deps.research?.viewOf(caller) !== undefined;
}

/**
 * What to tell whoever registers an AE whose roles give it a de-identified
 * view under this configuration, or undefined when they do not.
 */
export function deidentifiedAeWarning(research: Research | undefined, title: string, principal: Principal): string | undefined {
  const caller = newCaller(principal, { protocol: 'dimse', callingAe: title, address: null });
  const view = research?.viewOf(caller);
  if (view === undefined) return undefined;
  return (
    `AE ${title}: its roles (${principal.roles.join(',')}) read through the de-identified view of project ${view.project}: ` +
    'its C-FIND matches and its C-GET and C-MOVE send de-identified data under pseudonymous UIDs, original identifiers find nothing, ' +
    'and storage commitment is refused (0x0124)'
  );
}
