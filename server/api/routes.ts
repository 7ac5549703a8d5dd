import Router, { type RouterContext } from '@koa/router';
import { LABEL_PATTERN } from '../access.js';
import { relabel } from '../archive.js';
import { auditRecordOf } from '../audit.js';
import { queryAuditEvents } from '../db/audit.js';
import { readLabels, type LabelTarget } from '../db/labels.js';
import type { AppDeps } from '../deps.js';
import { isValidUid } from '../dicom/uid.js';
import { ApiError } from '../errors.js';
import { readFields } from '../http/body.js';
import { checkText } from '../http/client-text.js';
import { callerOf, guard } from '../http/guard.js';
import { postRevokedToken } from './tokens.js';
import { deleteAeRoute, getAeRoute, listAesRoute, putAeRoute } from './aes.js';
import { exportRoutes } from '../export/routes.js';
import { readChangefeed, readLatestChange } from '../dicomweb/changefeed.js';
import { purgeNow, undoReject } from '../dicomweb/reject.js';

const STUDY_LABELS = '/studies/:studyUid/labels';
const SERIES_LABELS = '/studies/:studyUid/series/:seriesUid/labels';

/** Cairn's own management API under /api: sensitivity labels and the audit trail. */
export function apiRouter(deps: AppDeps): Router {
  const r = new Router({ prefix: '/api' });
  for (const name of ['studyUid', 'seriesUid', 'sopInstanceUid']) {
    r.param(name, (value, _ctx, next) => {
      if (!isValidUid(value)) throw new ApiError(400, 'InvalidUid', `${name} "${value}" is not a valid DICOM UID`);
      return next();
    });
  }
  for (const path of [STUDY_LABELS, SERIES_LABELS]) {
    r.get(path, guard('label', 'label-read'), getLabels(deps));
    r.put(path, guard('label', 'label-change'), putLabels(deps));
    r.delete(path, guard('label', 'label-change'), deleteLabels(deps));
  }
  r.get('/audit', guard('audit', 'audit-read'), getAudit(deps));
  r.post('/revoked-tokens', guard('user', 'token-revoke'), postRevokedToken(deps));
  r.get('/aes', guard('user', 'ae-read'), listAesRoute(deps));
  r.get('/aes/:title', guard('user', 'ae-read'), getAeRoute(deps));
  r.put('/aes/:title', guard('user', 'ae-change'), putAeRoute(deps));
  r.delete('/aes/:title', guard('user', 'ae-change'), deleteAeRoute(deps));
  exportRoutes(r, deps);
  // The change feed (server/dicomweb/changefeed.ts): what a mirror or pipeline follows.
  r.get('/changefeed', guard('search', 'search'), readChangefeed(deps));
  r.get('/changefeed/latest', guard('search', 'search'), readLatestChange(deps));
  // IHE IOCM: undoing a rejection, and deleting rejected data after its retention period (server/dicomweb/reject.ts).
  for (const path of ['/studies/:studyUid', '/studies/:studyUid/series/:seriesUid', '/studies/:studyUid/series/:seriesUid/instances/:sopInstanceUid'])
    r.post(`${path}/unreject`, guard('delete', 'rejection-undo'), undoReject(deps));
  r.post('/rejections/purge', guard('delete', 'rejection-purge'), purgeNow(deps));
  return r;
}

function labelTarget(ctx: RouterContext): LabelTarget {
  return { studyUid: ctx.params.studyUid, seriesUid: ctx.params.seriesUid };
}

function missing(t: LabelTarget): ApiError {
  return t.seriesUid
    ? new ApiError(404, 'SeriesNotFound', `series ${t.seriesUid} was not found`)
    : new ApiError(404, 'StudyNotFound', `study ${t.studyUid} was not found`);
}

function answer(ctx: RouterContext, t: LabelTarget, labels: string[]): void {
  ctx.body = { studyUid: t.studyUid, ...(t.seriesUid ? { seriesUid: t.seriesUid } : {}), labels };
}

function getLabels(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const t = labelTarget(ctx);
    callerOf(ctx).touched.note({ studyUid: t.studyUid, seriesUid: t.seriesUid });
    const labels = await readLabels(deps.db, t);
    if (!labels) throw missing(t);
    answer(ctx, t, labels);
  };
}

async function change(deps: AppDeps, ctx: RouterContext, labels: string[]): Promise<void> {
  const t = labelTarget(ctx);
  const changed = await relabel(deps, callerOf(ctx), t, labels);
  if (!changed) throw missing(t);
  auditRecordOf(ctx).detail = changed;
  deps.log.info({ studyUid: t.studyUid, seriesUid: t.seriesUid, ...changed }, 'labels changed');
  answer(ctx, t, changed.after);
}

function putLabels(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const body = await readFields(ctx);
    const labels = body.labels;
    if (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string'))
      throw new ApiError(400, 'InvalidLabels', 'the body must be {"labels": ["…", …]}');
    const bad = labels.find((l) => !LABEL_PATTERN.test(l));
    if (bad !== undefined)
      throw new ApiError(400, 'InvalidLabels', `label "${bad}" is not 1-64 letters, digits, "_", ".", ":" or "-" (starting with a letter or digit)`);
    await change(deps, ctx, labels);
  };
}

function deleteLabels(deps: AppDeps) {
  return (ctx: RouterContext) => change(deps, ctx, []);
}

function one(ctx: RouterContext, name: string): string | undefined {
  const v = ctx.query[name];
  if (Array.isArray(v)) throw new ApiError(400, 'InvalidQuery', `${name} may be given once`);
  if (v !== undefined) checkText(name, v);
  return v === undefined || v === '' ? undefined : v;
}

function time(ctx: RouterContext, name: string): Date | undefined {
  const v = one(ctx, name);
  if (v === undefined) return undefined;
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new ApiError(400, 'InvalidQuery', `${name} "${v}" is not a date and time (ISO 8601)`);
  return d;
}

function count(ctx: RouterContext, name: string, fallback: number, max: number): number {
  const v = one(ctx, name);
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v) || Number(v) > max) throw new ApiError(400, 'InvalidQuery', `${name} must be a whole number from 0 to ${max}`);
  return Number(v);
}

/**
 * GET /api/audit?user=&study=&action=&from=&to=&before=&limit=&offset= (auditor, admin), newest
 * first. `next` is the `before` of the following page: reading the trail adds
 * to it, so a cursor pages reliably where an offset would shift.
 */
function getAudit(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const known = new Set(['user', 'study', 'action', 'from', 'to', 'before', 'limit', 'offset']);
    const unknown = Object.keys(ctx.query).find((k) => !known.has(k));
    if (unknown) throw new ApiError(400, 'InvalidQuery', `unknown audit filter "${unknown}" (known: ${[...known].join(', ')})`);
    const q = {
      user: one(ctx, 'user'),
      study: one(ctx, 'study'),
      action: one(ctx, 'action'),
      from: time(ctx, 'from'),
      to: time(ctx, 'to'),
      before: ctx.query.before === undefined ? undefined : count(ctx, 'before', 0, Number.MAX_SAFE_INTEGER),
      limit: count(ctx, 'limit', 100, 1000),
      offset: count(ctx, 'offset', 0, Number.MAX_SAFE_INTEGER),
    };
    const events = await queryAuditEvents(deps.db, q);
    ctx.body = { events, limit: q.limit, next: events.length === q.limit && events.length ? events[events.length - 1].id : null };
  };
}
