import type { RouterContext } from '@koa/router';
import type { Next } from 'koa';
import type { AppDeps } from '../deps.js';
import { resolveAttribute } from '../dicom/tags.js';
import { notFound, targetOf } from '../dicomweb/target.js';
import { ApiError } from '../errors.js';
import { queryPairs } from '../http/client-text.js';
import { callerOf, GUARD } from '../http/guard.js';
import type { DeidView } from './research.js';

// A caller of a de-identified view speaks in pseudonyms: the UIDs in its
// URLs and UID query keys are the pseudonymous ones it was shown, turned back
// into the originals here, after the route's guard and before the handler;
// an original UID sent by such a caller finds nothing, like a UID that does
// not exist. A query by the patient pseudonym (in Patient ID or Patient Name,
// exact) finds that patient's studies; a date key of a view that shifts
// dates matches the shifted dates it shows (server/deid/research.ts); any
// other query matching on an attribute its view removes or replaces finds
// nothing. The pseudonyms a handler's answer shows are written before that
// answer leaves.

type Middleware = (ctx: RouterContext, next: Next) => Promise<void>;

const PARAMS = ['studyUid', 'seriesUid', 'sopInstanceUid'] as const;
const UID_KEYS = new Set(['0020000D', '0020000E', '00080018']);
const PATIENT_ID = '00100020';
const PATIENT_NAME = '00100010';
const CONTROL = new Set(['includefield', 'limit', 'offset', 'fuzzymatching', 'emptyvaluematching', 'multiplevaluematching']);
/** A UID no instance has: what an unknown pseudonym in a UID query key becomes, so that it matches nothing. */
const NO_SUCH_UID = '2.25.0';

/** `guard` (http/guard.ts) followed by the pseudonym translation for callers of a de-identified view. */
export function withPseudonyms(deps: AppDeps, guard: Middleware & { [GUARD]: string }): Middleware & { [GUARD]: string } {
  const mw: Middleware = (ctx, next) =>
    guard(ctx, async () => {
      const research = deps.research;
      const caller = callerOf(ctx);
      const view = research?.viewOf(caller);
      if (!research || !view) return next();
      const mapped = await originalParams(deps, view, ctx);
      if (ctx.method === 'GET' && !(await originalQuery(deps, view, ctx))) {
        ctx.type = 'application/dicom+json';
        ctx.body = '[]';
        return;
      }
      try {
        await next();
      } catch (err) {
        throw inPseudonyms(err, mapped);
      }
      await research.flush(deps.db, caller);
    });
  return Object.assign(mw, { [GUARD]: guard[GUARD] });
}

/** Puts the originals of the pseudonymous UIDs of the URL in its route parameters; the pairs, original → pseudonym. */
async function originalParams(deps: AppDeps, view: DeidView, ctx: RouterContext): Promise<Map<string, string>> {
  const asked = targetOf(ctx);
  const mapped = new Map<string, string>();
  for (const name of PARAMS) {
    const pseudo = ctx.params[name];
    if (pseudo === undefined) continue;
    const original = await deps.research!.original(deps.db, view, pseudo);
    if (original === undefined) throw notFound(asked);
    ctx.params[name] = original;
    mapped.set(original, pseudo);
  }
  return mapped;
}

/** An error whose message names an original UID of the URL names its pseudonym instead: a caller never reads an original. */
function inPseudonyms(err: unknown, mapped: Map<string, string>): unknown {
  if (!(err instanceof ApiError) || !mapped.size) return err;
  let message = err.message;
  for (const [original, pseudo] of mapped) message = message.split(original).join(pseudo);
  return message === err.message ? err : new ApiError(err.status, err.code, message, err.headers);
}

/**
 * Rewrites a QIDO query string for the index: UID keys to the originals.
 * False when the query matches on an attribute the view changes (the answer
 * is then empty).
 */
async function originalQuery(deps: AppDeps, view: DeidView, ctx: RouterContext): Promise<boolean> {
  if (!ctx.querystring) return true;
  const text = await originalQueryText(deps, view, ctx.querystring);
  if (text === false) return false;
  ctx.querystring = text;
  return true;
}

/**
 * A QIDO query string as the index is asked it for a caller of `view` (UID
 * keys and the patient pseudonym turned into originals), or false when it
 * matches on an attribute the view changes. Also the C-FIND SCP's.
 */
export async function originalQueryText(deps: Pick<AppDeps, 'db' | 'research'>, view: DeidView, querystring: string): Promise<string | false> {
  const d = view.deidentifier;
  const out: string[] = [];
  let changed = false;
  let patientId: string | undefined;
  for (const [name, value] of queryPairs(querystring)) {
    if (CONTROL.has(name) || value === '' || value === '*') {
      out.push(`${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
      continue;
    }
    const path = name.split('.').map((k) => resolveAttribute(k)?.tag);
    if (path.length === 1 && path[0] && UID_KEYS.has(path[0]) && !d.options.retainUids) {
      const originals = await Promise.all(value.split(/,|\\/).map(async (v) => (await deps.research!.original(deps.db, view, v.trim())) ?? NO_SUCH_UID));
      out.push(`${encodeURIComponent(name)}=${encodeURIComponent(originals.join(','))}`);
      changed = true;
      continue;
    }
    // The patient pseudonym, in Patient ID or Patient Name, finds that patient's studies: it stands for the original Patient ID.
    if (path.length === 1 && (path[0] === PATIENT_ID || path[0] === PATIENT_NAME)) {
      const original = /[*?,\\]/.test(value) ? undefined : await deps.research!.originalPatientId(deps.db, view, value.trim());
      if (original === undefined || (patientId !== undefined && patientId !== original)) return false;
      if (patientId === undefined) out.push(`PatientID=${encodeURIComponent(original)}`);
      patientId = original;
      changed = true;
      continue;
    }
    // An unknown key is left for the QIDO parser to refuse with its 400.
    if (path.some((tag) => tag !== undefined && !keeps(view, tag))) return false;
    out.push(`${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
  }
  return changed ? out.join('&') : querystring;
}

/** Whether a key on `tag` can match what the view shows: kept values as stored, shifted dates by their shift (server/deid/research.ts). */
function keeps(view: DeidView, tag: string): boolean {
  return view.deidentifier.matchingOf(tag) !== 'none';
}
