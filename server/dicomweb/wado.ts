import type { RouterContext } from '@koa/router';
import { auditedRead } from '../audit.js';
import type { AppDeps } from '../deps.js';
import { findInstances } from '../db/lookup.js';
import { parseAccept } from '../http/accept.js';
import { callerOf } from '../http/guard.js';
import { sendReply } from '../http/reply.js';
import { retrieveBytes } from '../retrieve.js';
import { notFound, targetOf } from './target.js';

/**
 * WADO-RS retrieve of a study, series or instance (PS3.18 §10.4.1.1.1):
 * multipart/related; type="application/dicom", each part an instance as the
 * bytes seam (server/retrieve.ts) makes it.
 */
export function retrieve(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const t = targetOf(ctx);
    const accepts = parseAccept(ctx.get('accept'));
    const caller = callerOf(ctx);
    const rows = await findInstances(deps.db, caller, t, auditedRead(ctx));
    if (!rows.length) throw notFound(t);
    await sendReply(ctx, await retrieveBytes(deps, caller, accepts, { kind: 'instances', rows, one: !!t.sopInstanceUid }));
  };
}
