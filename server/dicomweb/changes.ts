import { setTimeout as sleep } from 'node:timers/promises';
import type { RouterContext } from '@koa/router';
import type { Caller } from '../access.js';
import { readChanges, type ChangePage } from '../db/changes.js';
import type { AppDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import { callerOf } from '../http/guard.js';

// The change feed: GET /dicom-web/changes?since=&limit=&wait= reads the
// archive's change sequence after `since`, each change only when the caller
// may see its study and series. With `wait`, a read that finds nothing new
// waits up to that many seconds for the next change (long polling), so a
// pipeline follows the archive without polling it in a loop.

export const CHANGES_DEFAULT_LIMIT = 100;
export const CHANGES_MAX_LIMIT = 1000;
export const CHANGES_MAX_WAIT = 60;
export const CHANGES_PARAMS = ['since', 'limit', 'wait'];
const PARAMS = CHANGES_PARAMS;
/** How often a waiting read looks again: changes come from every replica, so it asks the database. */
const POLL_MS = 250;

export function followChanges(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const unknown = Object.keys(ctx.query).find((k) => !PARAMS.includes(k));
    if (unknown !== undefined) throw new ApiError(400, 'InvalidQuery', `unknown query parameter "${unknown}"; the change feed takes ${PARAMS.join(', ')}`);
    const since = integer(ctx, 'since', 0, Number.MAX_SAFE_INTEGER, 0);
    const limit = integer(ctx, 'limit', 1, CHANGES_MAX_LIMIT, CHANGES_DEFAULT_LIMIT);
    const wait = integer(ctx, 'wait', 0, CHANGES_MAX_WAIT, 0);
    const caller = followerOf(deps, ctx);
    const deadline = Date.now() + wait * 1000;
    let gone = false;
    ctx.req.once('close', () => {
      gone = true;
    });
    let page: ChangePage = await readChanges(deps.db, caller, since, limit);
    while (!page.changes.length && Date.now() < deadline && !gone) {
      await sleep(Math.min(POLL_MS, Math.max(deadline - Date.now(), 0)));
      page = await readChanges(deps.db, caller, page.next, limit);
    }
    ctx.type = 'application/json';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      changes: page.changes.map((c) => ({
        seq: c.seq,
        at: c.at.toISOString(),
        kind: c.kind,
        studyUid: c.studyUid,
        ...(c.seriesUid ? { seriesUid: c.seriesUid } : {}),
        ...(c.sopInstanceUid ? { sopInstanceUid: c.sopInstanceUid } : {}),
      })),
      next: page.next,
    };
  };
}

/** The caller, unless it gets a de-identified view: a change names original UIDs, which that view never shows. */
export function followerOf(deps: AppDeps, ctx: RouterContext): Caller {
  const caller = callerOf(ctx);
  if (deps.research?.viewOf(caller))
    throw new ApiError(403, 'Forbidden', 'the change feed names original UIDs and is not offered to a caller of a de-identified view');
  return caller;
}

function integer(ctx: RouterContext, name: string, min: number, max: number, fallback: number): number {
  const raw = ctx.query[name];
  if (raw === undefined) return fallback;
  if (typeof raw !== 'string' || !/^\d{1,16}$/.test(raw) || Number(raw) < min || Number(raw) > max)
    throw new ApiError(400, 'InvalidQuery', `${name} must be an integer from ${min} to ${max}, not "${String(raw)}"`);
  return Number(raw);
}
