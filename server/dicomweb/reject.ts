import type { RouterContext } from '@koa/router';
import { archiveContext, purgeRejected, rejectTarget, undoRejection } from '../archive.js';
import { auditRecordOf } from '../audit.js';
import type { AppDeps } from '../deps.js';
import { REJECTION_TITLES } from '../dicom/rejection-note.js';
import { ApiError } from '../errors.js';
import { callerOf } from '../http/guard.js';
import { notFound, targetOf } from './target.js';

// IHE IOCM beyond a stored rejection note: the reject shortcut other
// archives offer, an admin's undo, and the purge of rejected data whose
// retention period ended (server/archive.ts does each).

/**
 * POST /dicom-web/studies/{study}[/series/{series}[/instances/{instance}]]/reject/{code}^{scheme}:
 * rejects what the caller sees there with a note Cairn writes and stores.
 */
export function rejectShortcut(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const [, value = '', scheme] = /^(\d{1,16})\^([A-Za-z0-9_.-]{1,16})$/.exec(ctx.params.code ?? '') ?? [];
    const titles = Object.entries(REJECTION_TITLES)
      .map(([v, meaning]) => `${v}^DCM (${meaning})`)
      .join(', ');
    if (scheme !== 'DCM' || !(value in REJECTION_TITLES))
      throw new ApiError(400, 'InvalidRejectionCode', `"${ctx.params.code}" is not a rejection title of PS3.16 CID 7010; one of ${titles}`);
    const t = targetOf(ctx);
    const outcome = await rejectTarget(archiveContext(deps), callerOf(ctx), t, value);
    if (!outcome) throw notFound(t);
    if (!outcome.ok) throw new ApiError(outcome.storageUnavailable ? 503 : 409, 'RejectionNotStored', `the rejection note was not stored: ${outcome.message}`);
    const rejected = outcome.rejection?.rejected ?? 0;
    auditRecordOf(ctx).detail = { rejections: [{ kos: outcome.sopInstanceUid, code: value, rejected }] };
    ctx.body = {
      rejectionNote: { studyUid: outcome.studyUid, seriesUid: outcome.seriesUid, sopInstanceUid: outcome.sopInstanceUid },
      code: { value: value, scheme: 'DCM', meaning: REJECTION_TITLES[value] },
      rejected,
    };
  };
}

/** POST /api/studies/{study}[/series/{series}[/instances/{instance}]]/unreject (admin). */
export function undoReject(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const t = targetOf(ctx);
    const { restored, forgotten } = await undoRejection(deps, callerOf(ctx), t);
    if (!restored.length && !forgotten)
      throw new ApiError(404, 'NothingRejected', `nothing you may see is rejected under ${t.sopInstanceUid ?? t.seriesUid ?? t.studyUid}`);
    auditRecordOf(ctx).detail = { restored: restored.length, forgotten };
    deps.log.info({ studyUid: t.studyUid, seriesUid: t.seriesUid, sopInstanceUid: t.sopInstanceUid, restored: restored.length }, 'rejection undone');
    ctx.body = { restored, forgotten };
  };
}

/** POST /api/rejections/purge (admin): deletes for good what was rejected longer ago than REJECTION_RETENTION_DAYS. */
export function purgeNow(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    if (Object.keys(ctx.query).length) throw new ApiError(400, 'InvalidQuery', 'a purge takes no parameters: it deletes what REJECTION_RETENTION_DAYS allows');
    const days = deps.config.rejectionRetentionDays;
    if (days === undefined) throw new ApiError(409, 'PurgeDisabled', 'REJECTION_RETENTION_DAYS is "never": rejected data is kept');
    const purged = await purgeRejected(archiveContext(deps), callerOf(ctx), days);
    if (purged === undefined)
      throw new ApiError(409, 'PurgeRunning', 'a purge of rejected data is running already (on this or another replica); try again when it ends');
    auditRecordOf(ctx).detail = { purged, retentionDays: days };
    ctx.body = { purged, retentionDays: days };
  };
}
