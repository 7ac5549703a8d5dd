import type { RouterContext } from '@koa/router';
import type { Caller } from '../access.js';
import { latestChange, readChanges, type Change, type ChangePage, type ReadOptions } from '../db/changes.js';
import type { AppDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import { dicomwebBase } from '../http/base-url.js';
import { checkText } from '../http/client-text.js';
import { present } from '../present.js';
import { CHANGES_MAX_LIMIT, followerOf } from './changes.js';

// The change feed as other archives offer it (the Microsoft DICOM service's
// /changefeed, which pipelines and mirrors are written against):
// GET /api/changefeed?startTime=&endTime=&offset=&limit=&includeMetadata=
// and GET /api/changefeed/latest. One entry per change of one instance, in
// the archive's change sequence, read by the same reader as
// /dicom-web/changes (server/db/changes.ts), so it is scoped by the caller's
// access the same way and never steps over a change still being committed.
// A relabel is also listed to a caller it withdraws instances from: a
// mirror must learn that they left its view.

export const CHANGEFEED_PARAMS = ['startTime', 'endTime', 'offset', 'limit', 'includeMetadata'];
export const CHANGEFEED_DEFAULT_LIMIT = 100;

/** What each kind of change in the sequence is called in the feed. */
const ACTIONS: Record<string, string> = {
  stored: 'create',
  replaced: 'update',
  deleted: 'delete',
  rejected: 'reject',
  relabelled: 'label',
  restored: 'restore',
};

/** How many reads one request makes at most while every change it passes is hidden from the caller. */
const MAX_EMPTY_READS = 10;

export interface FeedEntry {
  Sequence: number;
  Action: string;
  Timestamp: string;
  State: string;
  StudyInstanceUid: string;
  SeriesInstanceUid: string;
  SopInstanceUid: string;
  Metadata?: unknown;
}

export function readChangefeed(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const unknown = Object.keys(ctx.query).find((k) => !CHANGEFEED_PARAMS.includes(k));
    if (unknown !== undefined)
      throw new ApiError(400, 'InvalidQuery', `unknown query parameter "${unknown}"; the change feed takes ${CHANGEFEED_PARAMS.join(', ')}`);
    const caller = followerOf(deps, ctx);
    const offset = integer(ctx, 'offset', 0, Number.MAX_SAFE_INTEGER, 0);
    const limit = integer(ctx, 'limit', 1, CHANGES_MAX_LIMIT, CHANGEFEED_DEFAULT_LIMIT);
    const opts: ReadOptions = {
      instancesOnly: true,
      withdrawals: true,
      from: time(ctx, 'startTime'),
      to: time(ctx, 'endTime'),
      metadata: flag(ctx, 'includeMetadata', true),
    };
    if (opts.from && opts.to && opts.from >= opts.to) throw new ApiError(400, 'InvalidQuery', 'startTime must be before endTime');
    // A page of changes all hidden from the caller is read past here, a few
    // times at most, rather than answered empty: an empty page is how a
    // follower knows it has caught up.
    let page: ChangePage = await readChanges(deps.db, caller, offset, limit, opts);
    for (let i = 1; i < MAX_EMPTY_READS && !page.changes.length && page.next > offset; i++) {
      const at = page.next;
      page = await readChanges(deps.db, caller, at, limit, opts);
      if (page.next <= at) break;
    }
    const entries = entriesOf(deps, ctx, caller, page.changes);
    // Where to go on from: past the hidden changes too (RFC 8288 link).
    const next = new URL(ctx.href);
    next.searchParams.set('offset', String(page.next));
    ctx.set('Link', `<${next.pathname}${next.search}>; rel="next"`);
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'application/json';
    ctx.body = entries;
  };
}

export function readLatestChange(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const unknown = Object.keys(ctx.query).find((k) => k !== 'includeMetadata');
    if (unknown !== undefined) throw new ApiError(400, 'InvalidQuery', `unknown query parameter "${unknown}"; the latest change takes includeMetadata`);
    const caller = followerOf(deps, ctx);
    const change = await latestChange(deps.db, caller, { instancesOnly: true, withdrawals: true, metadata: flag(ctx, 'includeMetadata', true) });
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'application/json';
    // An archive with nothing the caller may follow answers an empty object, as the feed it follows is empty.
    ctx.body = change ? entriesOf(deps, ctx, caller, [change])[0] : {};
  };
}

function entriesOf(deps: AppDeps, ctx: RouterContext, caller: Caller, changes: readonly Change[]): FeedEntry[] {
  const texts = changes.flatMap((c) => (c.metadata === undefined ? [] : [c.metadata]));
  // The metadata as WADO-RS metadata sends it: through the attributes seam, BulkDataURIs under this server's base.
  const metadata = texts.length
    ? (JSON.parse(present(deps, caller, texts, { set: 'metadata', bulkDataBase: dicomwebBase(ctx, deps.config) })) as unknown[])
    : [];
  let m = 0;
  return changes.map((c) => ({
    Sequence: c.seq,
    Action: ACTIONS[c.kind] ?? c.kind,
    Timestamp: c.at.toISOString(),
    State: c.state ?? 'deleted',
    StudyInstanceUid: c.studyUid,
    SeriesInstanceUid: c.seriesUid ?? '',
    SopInstanceUid: c.sopInstanceUid ?? '',
    ...(c.metadata === undefined ? {} : { Metadata: metadata[m++] }),
  }));
}

function one(ctx: RouterContext, name: string): string | undefined {
  const raw = ctx.query[name];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string') throw new ApiError(400, 'InvalidQuery', `${name} may be given once`);
  checkText(name, raw);
  return raw;
}

function integer(ctx: RouterContext, name: string, min: number, max: number, fallback: number): number {
  const raw = one(ctx, name);
  if (raw === undefined) return fallback;
  if (!/^\d{1,16}$/.test(raw) || Number(raw) < min || Number(raw) > max)
    throw new ApiError(400, 'InvalidQuery', `${name} must be an integer from ${min} to ${max}, not "${raw}"`);
  return Number(raw);
}

function time(ctx: RouterContext, name: string): Date | undefined {
  const raw = one(ctx, name);
  if (raw === undefined) return undefined;
  // ISO 8601 date and time with a zone, or a date alone (UTC midnight).
  const d = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/.test(raw) ? new Date(raw) : new Date(Number.NaN);
  if (Number.isNaN(d.getTime()))
    throw new ApiError(400, 'InvalidQuery', `${name} "${raw}" is not an ISO 8601 date and time with a zone (2026-12-03T17:00:00Z)`);
  return d;
}

function flag(ctx: RouterContext, name: string, fallback: boolean): boolean {
  const raw = one(ctx, name);
  if (raw === undefined) return fallback;
  if (raw !== 'true' && raw !== 'false') throw new ApiError(400, 'InvalidQuery', `${name} must be true or false, not "${raw}"`);
  return raw === 'true';
}
