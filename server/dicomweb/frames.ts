import type { RouterContext } from '@koa/router';
import { auditedRead } from '../audit.js';
import type { AppDeps } from '../deps.js';
import { findFramedInstance } from '../db/lookup.js';
import { ApiError } from '../errors.js';
import { parseAccept } from '../http/accept.js';
import { callerOf } from '../http/guard.js';
import { sendReply } from '../http/reply.js';
import { retrieveBytes } from '../retrieve.js';
import { notFound, targetOf } from './target.js';

/** PS3.18 §8.3.3 frame-list: comma-separated frame numbers, starting at 1. */
export function parseFrameList(value: string): number[] {
  const items = value.split(',');
  if (!items.every((s) => /^[1-9][0-9]*$/.test(s.trim()))) {
    throw new ApiError(400, 'InvalidFrameList', `frame list "${value}" must be comma-separated frame numbers starting at 1`);
  }
  return items.map((s) => Number(s.trim()));
}

/** WADO-RS frames (PS3.18 §10.4.1.1.3): each frame read by range from the blob, as the bytes seam makes it. */
export function retrieveFrames(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const t = targetOf(ctx);
    const frames = parseFrameList(ctx.params.frames);
    const caller = callerOf(ctx);
    const row = await findFramedInstance(deps.db, caller, t as Required<typeof t>, auditedRead(ctx));
    if (!row) throw notFound(t);
    await sendReply(ctx, await retrieveBytes(deps, caller, parseAccept(ctx.get('accept')), { kind: 'frames', row, frames }));
  };
}

/**
 * WADO-RS bulk data (PS3.18 §10.4.1.1.5) for the BulkDataURIs in metadata:
 * the value bytes of a top-level bulk element, with HTTP Range (RFC 9110 §14).
 */
export function retrieveBulkData(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const t = targetOf(ctx);
    const tag = String(ctx.params.tag).toUpperCase();
    if (!/^[0-9A-F]{8}$/.test(tag)) throw new ApiError(400, 'InvalidTag', `"${ctx.params.tag}" is not an 8-digit hexadecimal tag`);
    const caller = callerOf(ctx);
    const range = ctx.get('range') || undefined;
    // With a Range the answer may be 206 or 416: the row is written once the status is known, not with the lookup.
    const row = await findFramedInstance(deps.db, caller, t as Required<typeof t>, range ? undefined : auditedRead(ctx));
    if (!row) throw notFound(t);
    const asked = { kind: 'bulk', row, tag, range } as const;
    await sendReply(ctx, await retrieveBytes(deps, caller, parseAccept(ctx.get('accept')), asked));
  };
}
