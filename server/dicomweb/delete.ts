import type { RouterContext } from '@koa/router';
import type { AppDeps } from '../deps.js';
import { findInstances } from '../db/lookup.js';
import { deleteInstances } from '../db/write.js';
import { callerOf } from '../http/guard.js';
import { notFound, targetOf } from './target.js';

/**
 * DELETE of a study, series or instance: the index rows go first, in one
 * transaction, then the blobs. A crash between the two leaves orphan blobs
 * for the sweep, never an index row without its blob.
 */
export function remove(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const t = targetOf(ctx);
    const caller = callerOf(ctx);
    if (!(await findInstances(deps.db, caller, t)).length) throw notFound(t);
    const keys = await deleteInstances(deps.db, caller, { study_uid: t.studyUid, ...(t.seriesUid ? { series_uid: t.seriesUid } : {}), ...(t.sopInstanceUid ? { sop_instance_uid: t.sopInstanceUid } : {}) });
    for (const key of keys) await deps.blobs.delete(key).catch((err) => deps.log.warn({ err, key }, 'blob delete failed; the sweep will retry'));
    deps.log.info({ studyUid: t.studyUid, seriesUid: t.seriesUid, sopInstanceUid: t.sopInstanceUid, instances: keys.length }, 'deleted');
    ctx.status = 204;
  };
}
