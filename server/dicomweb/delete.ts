import type { RouterContext } from '@koa/router';
import { archiveContext, deleteFromArchive } from '../archive.js';
import type { AppDeps } from '../deps.js';
import { callerOf } from '../http/guard.js';
import { notFound, targetOf } from './target.js';

/** DELETE of a study, series or instance: the archive deletes what the caller may see; nothing there is 404. */
export function remove(deps: AppDeps) {
  const archive = archiveContext(deps);
  return async (ctx: RouterContext): Promise<void> => {
    const t = targetOf(ctx);
    const instances = await deleteFromArchive(archive, callerOf(ctx), t);
    if (instances === undefined) throw notFound(t);
    deps.log.info({ studyUid: t.studyUid, seriesUid: t.seriesUid, sopInstanceUid: t.sopInstanceUid, instances }, 'deleted');
    ctx.status = 204;
  };
}
