import { downloadCollection } from '../export/download.js';
import Router, { type RouterContext } from '@koa/router';
import type { Caller } from '../access.js';
import { auditRecordOf } from '../audit.js';
import { searchIndex } from '../db/search.js';
import { PROFILE_OPTIONS, PROJECT_PATTERN, parseProfile } from '../deid/settings.js';
import type { AppDeps } from '../deps.js';
import { isValidUid } from '../dicom/uid.js';
import { capabilitiesAnswer } from '../dicomweb/capabilities.js';
import { dicomwebRouter, slotsOf } from '../dicomweb/routes.js';
import { wadoUriChain } from '../dicomweb/wado-uri.js';
import { parseQidoQuery } from '../dicomweb/qido-params.js';
import { ApiError } from '../errors.js';
import { readFields } from '../http/body.js';
import { textProblem } from '../http/client-text.js';
import { callerOf, guard } from '../http/guard.js';
import { CollectionDirectory, newShareSecret, shareToken } from './directory.js';
import {
  addGrant,
  addMembers,
  deleteCollection,
  deleteGrant,
  findCollection,
  insertCollection,
  insertShare,
  listCollections,
  listGrants,
  listMembers,
  listShares,
  removeMembers,
  revokeShare,
  updateCollection,
  visibleSeries,
  visibleStudies,
  type Collection,
  type Member,
  type NewMember,
  type QueryOrigin,
} from './rows.js';
import { feedPosition } from './grow.js';
import { stewardPageRouter } from './page.js';
import { collectionScope } from './scope.js';
import { shareLinkRouter } from './share-link.js';

// Collections: named sets of studies and series shared de-identified.
// Management under /api/collections (stewards and administrators), and each
// collection's own DICOMweb root at /collections/{id}/dicom-web, the one
// DICOMweb route table mounted again with its scope (scope.ts).

/** The profile a collection gets when none is named: the Basic Profile with modified dates, as the researcher role's view. */
const DEFAULT_PROFILE = 'modified-dates';
/** The most studies a QIDO query may add at once. */
const MAX_QUERY_STUDIES = 10_000;
/** The longest a share may last. */
const MAX_SHARE_DAYS = 366;

/** The management API and the collections' DICOMweb root, sharing what each app remembers of collections. */
export function collectionRouters(deps: AppDeps): Router[] {
  const directory = new CollectionDirectory(deps.db, deps.config.auth.revocationCheckSeconds);
  const root = dicomwebRouter(deps, { prefix: '/collections/:collectionId/dicom-web', first: collectionScope(deps, directory) });
  // The whole collection as a zip with a DICOMDIR (server/export/), read through the same scope as its DICOMweb root.
  const zip = new Router({ prefix: '/collections/:collectionId' });
  zip.get('/export.zip', collectionScope(deps, directory), guard('retrieve', 'export'), downloadCollection(deps));
  // WADO-URI (PS3.18 §9) and the Capabilities transaction (PS3.18 §8.9) of
  // the collection's root, behind the same scope: members only, in the
  // collection's de-identified view. The description lists what the root
  // serves, its reads, at the root's own base.
  const more = new Router({ prefix: '/collections/:collectionId' });
  more.get('/wado', collectionScope(deps, directory), ...wadoUriChain(deps, slotsOf(deps)));
  const capabilities = capabilitiesAnswer(deps, root, (route) => route.method === 'GET' && route.path !== '/changes');
  for (const path of ['/dicom-web', '/dicom-web/']) more.options(path, collectionScope(deps, directory), guard('search', 'collection-read'), capabilities);
  return [managementRouter(deps, directory), root, zip, more, shareLinkRouter(deps, directory), stewardPageRouter()];
}

function managementRouter(deps: AppDeps, directory: CollectionDirectory): Router {
  const r = new Router({ prefix: '/api/collections' });
  for (const name of ['studyUid', 'seriesUid']) {
    r.param(name, (value, _ctx, next) => {
      if (!isValidUid(value)) throw new ApiError(400, 'InvalidUid', `${name} "${value}" is not a valid DICOM UID`);
      return next();
    });
  }
  const reading = guard('collect', 'collection-read');
  const changing = guard('collect', 'collection-change');
  const sharing = guard('collect', 'collection-share');
  const ONE = '/:collectionId';
  r.get('/', reading, list(deps));
  r.post('/', changing, create(deps));
  r.get(ONE, reading, show(deps));
  r.patch(ONE, changing, change(deps, directory));
  r.delete(ONE, changing, remove(deps, directory));
  r.post(`${ONE}/members`, changing, addTo(deps));
  r.delete(`${ONE}/members/studies/:studyUid`, changing, removeFrom(deps, 'study'));
  r.delete(`${ONE}/members/series/:seriesUid`, changing, removeFrom(deps, 'series'));
  r.post(`${ONE}/grants`, changing, grant(deps, directory));
  r.delete(`${ONE}/grants/:grantId`, changing, ungrant(deps, directory));
  r.get(`${ONE}/shares`, reading, shares(deps));
  r.post(`${ONE}/shares`, sharing, share(deps));
  r.delete(`${ONE}/shares/:shareId`, sharing, unshare(deps, directory));
  return r;
}

function origin(ctx: RouterContext, deps: AppDeps): string {
  return deps.config.publicUrl ?? `${ctx.protocol}://${ctx.host}`;
}

function links(ctx: RouterContext, deps: AppDeps, id: string) {
  const o = origin(ctx, deps);
  return { dicomwebRoot: `${o}/collections/${id}/dicom-web`, viewerUrl: `${o}/collections/${id}/` };
}

function membersJson(members: Member[]) {
  return {
    studies: members.filter((m) => m.seriesUid === null).map((m) => m.studyUid),
    series: members.filter((m) => m.seriesUid !== null).map((m) => ({ studyUid: m.studyUid, seriesUid: m.seriesUid })),
  };
}

/** The collection the route names, noted in the audit record; 404 when there is none. */
async function named(ctx: RouterContext, deps: AppDeps): Promise<Collection> {
  const id = ctx.params.collectionId;
  auditRecordOf(ctx).detail = { ...auditRecordOf(ctx).detail, collection: id };
  const c = await findCollection(deps.db, id);
  if (!c) throw new ApiError(404, 'CollectionNotFound', `collection ${id} was not found`);
  return c;
}

function text(body: Record<string, unknown>, name: string, max: number, required: boolean): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) {
    if (required) throw new ApiError(400, 'InvalidCollection', `${name} is required`);
    return undefined;
  }
  if (typeof v !== 'string' || v.trim() === '' || v.length > max)
    throw new ApiError(400, 'InvalidCollection', `${name} must be text of 1 to ${max} characters`);
  const problem = textProblem(v);
  if (problem) throw new ApiError(400, 'InvalidCollection', `${name} ${problem}`);
  return v.trim();
}

function profileOf(body: Record<string, unknown>): string | undefined {
  const profile = text(body, 'profile', 500, false);
  if (profile === undefined) return undefined;
  const parsed = parseProfile(profile);
  if ('problem' in parsed) throw new ApiError(400, 'InvalidProfile', `profile "${profile}": ${parsed.problem} (options: ${PROFILE_OPTIONS.join(', ')})`);
  return profile;
}

function liveOf(body: Record<string, unknown>): boolean | undefined {
  const v = body.live;
  if (v !== undefined && typeof v !== 'boolean') throw new ApiError(400, 'InvalidCollection', 'live must be true or false');
  return v;
}

function projectOf(body: Record<string, unknown>): string | undefined {
  const project = text(body, 'project', 64, false);
  if (project !== undefined && !PROJECT_PATTERN.test(project))
    throw new ApiError(400, 'InvalidProject', 'project must be 1-64 letters, digits, "_", "." or "-", starting with a letter or digit');
  return project;
}

function uidList(body: Record<string, unknown>, name: string): string[] {
  const v = body[name];
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((u) => typeof u === 'string')) throw new ApiError(400, 'InvalidMembers', `${name} must be a list of UIDs`);
  const bad = v.find((u) => !isValidUid(u));
  if (bad !== undefined) throw new ApiError(400, 'InvalidUid', `"${String(bad).slice(0, 80)}" in ${name} is not a valid DICOM UID`);
  return [...new Set(v as string[])];
}

/**
 * The members a body names: `studies` and `series` (UIDs the caller can see;
 * any other is refused, naming it) and `query`, a QIDO-RS query string of
 * study-level matching keys resolved now to the studies the caller can see.
 */
async function membersOf(deps: AppDeps, caller: Caller, body: Record<string, unknown>, live = false): Promise<NewMember[]> {
  const studies = uidList(body, 'studies');
  const series = uidList(body, 'series');
  const seen = new Set(await visibleStudies(deps.db, caller, studies));
  const seenSeries = await visibleSeries(deps.db, caller, series);
  const missing = [...studies.filter((u) => !seen.has(u)), ...series.filter((u) => !seenSeries.some((s) => s.seriesUid === u))];
  if (missing.length)
    throw new ApiError(400, 'UnknownMembers', `${missing.length} of the UIDs name no study or series: ${missing.slice(0, 10).join(', ')}`, {}, { missing });
  const fromQuery = body.query === undefined ? [] : await resolveQuery(deps, caller, body.query);
  const named = new Set(studies);
  return [
    ...studies.map((studyUid) => ({ studyUid, seriesUid: null })),
    // A study only the live query found leaves when the query no longer finds it (grow.ts).
    ...[...new Set(fromQuery)].filter((u) => !named.has(u)).map((studyUid) => ({ studyUid, seriesUid: null, byQuery: live })),
    ...seenSeries.map((s) => ({ studyUid: s.studyUid, seriesUid: s.seriesUid })),
  ];
}

async function resolveQuery(deps: AppDeps, caller: Caller, query: unknown): Promise<string[]> {
  if (typeof query !== 'string') throw new ApiError(400, 'InvalidQuery', 'query must be a QIDO-RS query string, such as "ModalitiesInStudy=CT&StudyDate=2024"');
  const q = parseQidoQuery(query.replace(/^\?/, ''), 'study');
  const found: string[] = [];
  for (let offset = 0; ; offset += 1000) {
    const rows = await searchIndex(deps.db, caller, {
      level: 'study',
      matches: q.matches,
      scope: {},
      limit: 1000,
      offset,
      load: { study: false, studyCounts: false, series: false, seriesCount: false, metadata: false },
    });
    found.push(...rows.map((r) => r.studyUid));
    if (rows.length && rows[0].total > MAX_QUERY_STUDIES)
      throw new ApiError(400, 'QueryTooBroad', `the query matches ${rows[0].total} studies; a collection takes at most ${MAX_QUERY_STUDIES} from one query`);
    if (rows.length < 1000) return found;
  }
}

function list(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const rows = await listCollections(deps.db);
    ctx.body = { collections: rows.map((c) => ({ ...c, ...links(ctx, deps, c.id) })) };
  };
}

function create(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const body = await readFields(ctx);
    const known = new Set(['name', 'description', 'profile', 'project', 'studies', 'series', 'query', 'live']);
    const unknown = Object.keys(body).find((k) => !known.has(k));
    if (unknown) throw new ApiError(400, 'InvalidCollection', `unknown field "${unknown}" (known: ${[...known].join(', ')})`);
    const name = text(body, 'name', 200, true)!;
    const description = text(body, 'description', 2000, false) ?? null;
    const profile = profileOf(body) ?? DEFAULT_PROFILE;
    const project = projectOf(body);
    const live = liveOf(body);
    if (live !== undefined && body.query === undefined) throw new ApiError(400, 'InvalidCollection', 'live applies to a collection made from a query only');
    const caller = callerOf(ctx);
    // The position is taken before the query is resolved: a study stored in between is looked at again, never missed.
    const origin: QueryOrigin | undefined =
      typeof body.query === 'string'
        ? {
            query: body.query.replace(/^\?/, ''),
            live: live ?? true,
            makerRoles: caller.principal.roles,
            makerClearances: caller.principal.clearances,
            feedSeq: await feedPosition(deps.db),
          }
        : undefined;
    const members = await membersOf(deps, caller, body, origin?.live ?? false);
    const c = await insertCollection(deps.db, { name, description, profile, project, createdBy: caller.principal.sub, origin }, members);
    auditRecordOf(ctx).detail = { collection: c.id, name, profile, project: c.project, members: members.length, ...(origin ? { live: origin.live } : {}) };
    deps.log.info({ collection: c.id, members: members.length }, 'collection created');
    ctx.status = 201;
    ctx.set('Location', `/api/collections/${c.id}`);
    ctx.body = { ...c, ...links(ctx, deps, c.id), members: membersJson(await listMembers(deps.db, c.id)) };
  };
}

function show(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const c = await named(ctx, deps);
    const [members, grants, shareRows] = await Promise.all([listMembers(deps.db, c.id), listGrants(deps.db, c.id), listShares(deps.db, c.id)]);
    callerOf(ctx).touched.noteAll(members.map((m) => ({ studyUid: m.studyUid, seriesUid: m.seriesUid ?? undefined })));
    ctx.body = { ...c, ...links(ctx, deps, c.id), members: membersJson(members), grants, shares: shareRows };
  };
}

function change(deps: AppDeps, directory: CollectionDirectory) {
  return async (ctx: RouterContext): Promise<void> => {
    const c = await named(ctx, deps);
    const body = await readFields(ctx);
    const known = new Set(['name', 'description', 'profile', 'project', 'live']);
    const unknown = Object.keys(body).find((k) => !known.has(k));
    if (unknown) throw new ApiError(400, 'InvalidCollection', `unknown field "${unknown}" (known: ${[...known].join(', ')})`);
    const live = liveOf(body);
    if (live === true && !c.live)
      throw new ApiError(
        400,
        'InvalidCollection',
        c.query === null
          ? 'only a collection made from a query can be live'
          : 'a frozen collection stays frozen: make a new collection from its query to follow the archive again',
      );
    const patch = {
      ...(live === false ? { live } : {}),
      ...(body.name !== undefined ? { name: text(body, 'name', 200, true) } : {}),
      ...(body.description !== undefined ? { description: text(body, 'description', 2000, false) ?? null } : {}),
      ...(body.profile !== undefined ? { profile: profileOf(body) } : {}),
      ...(body.project !== undefined ? { project: projectOf(body) } : {}),
    };
    const updated = await updateCollection(deps.db, c.id, patch);
    if (!updated) throw new ApiError(404, 'CollectionNotFound', `collection ${c.id} was not found`);
    directory.forget(c.id);
    auditRecordOf(ctx).detail = { collection: c.id, changed: Object.keys(patch) };
    ctx.body = { ...updated, ...links(ctx, deps, c.id) };
  };
}

function remove(deps: AppDeps, directory: CollectionDirectory) {
  return async (ctx: RouterContext): Promise<void> => {
    const c = await named(ctx, deps);
    await deleteCollection(deps.db, c.id);
    directory.forget(c.id);
    deps.log.info({ collection: c.id }, 'collection removed');
    ctx.status = 204;
  };
}

function addTo(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const c = await named(ctx, deps);
    const body = await readFields(ctx);
    const unknown = Object.keys(body).find((k) => !['studies', 'series', 'query'].includes(k));
    if (unknown) throw new ApiError(400, 'InvalidMembers', `unknown field "${unknown}" (known: studies, series, query)`);
    const caller = callerOf(ctx);
    const added = await addMembers(deps.db, c.id, await membersOf(deps, caller, body), caller.principal.sub);
    auditRecordOf(ctx).detail = { collection: c.id, added };
    ctx.body = { added, members: membersJson(await listMembers(deps.db, c.id)) };
  };
}

function removeFrom(deps: AppDeps, level: 'study' | 'series') {
  return async (ctx: RouterContext): Promise<void> => {
    const c = await named(ctx, deps);
    const { studyUid, seriesUid } = ctx.params;
    callerOf(ctx).touched.note({ studyUid, seriesUid });
    const removed = await removeMembers(deps.db, c.id, level === 'study' ? [studyUid] : [], level === 'series' ? [seriesUid] : []);
    if (!removed)
      throw new ApiError(404, 'MemberNotFound', `${level === 'study' ? `study ${studyUid}` : `series ${seriesUid}`} is not a member of collection ${c.id}`);
    auditRecordOf(ctx).detail = { collection: c.id, removed };
    ctx.status = 204;
  };
}

function grant(deps: AppDeps, directory: CollectionDirectory) {
  return async (ctx: RouterContext): Promise<void> => {
    const c = await named(ctx, deps);
    const body = await readFields(ctx);
    const user = text(body, 'user', 200, false);
    const role = text(body, 'role', 64, false);
    if ((user === undefined) === (role === undefined) || Object.keys(body).some((k) => k !== 'user' && k !== 'role'))
      throw new ApiError(400, 'InvalidGrant', 'the body must be {"user": "name"} or {"role": "name"}');
    const { grant: g, created } = await addGrant(deps.db, c.id, {
      kind: user !== undefined ? 'user' : 'role',
      name: (user ?? role)!,
      by: callerOf(ctx).principal.sub,
    });
    directory.forget(c.id);
    auditRecordOf(ctx).detail = { collection: c.id, grant: { kind: g.kind, name: g.name } };
    ctx.status = created ? 201 : 200;
    ctx.body = g;
  };
}

function ungrant(deps: AppDeps, directory: CollectionDirectory) {
  return async (ctx: RouterContext): Promise<void> => {
    const c = await named(ctx, deps);
    const id = ctx.params.grantId;
    if (!/^\d{1,15}$/.test(id) || !(await deleteGrant(deps.db, c.id, Number(id))))
      throw new ApiError(404, 'GrantNotFound', `collection ${c.id} has no grant ${id.slice(0, 40)}`);
    directory.forget(c.id);
    auditRecordOf(ctx).detail = { collection: c.id, grantId: Number(id) };
    ctx.status = 204;
  };
}

function shares(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const c = await named(ctx, deps);
    ctx.body = { shares: await listShares(deps.db, c.id) };
  };
}

/**
 * POST …/shares {"expiresAt": "ISO 8601"} or {"expiresInSeconds": n}, with an
 * optional "recipient": a token for an outside institution, shown once.
 */
function share(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const c = await named(ctx, deps);
    const body = await readFields(ctx);
    const unknown = Object.keys(body).find((k) => !['expiresAt', 'expiresInSeconds', 'recipient'].includes(k));
    if (unknown) throw new ApiError(400, 'InvalidShare', `unknown field "${unknown}" (known: expiresAt, expiresInSeconds, recipient)`);
    const expiresAt = expiryOf(body);
    const recipient = text(body, 'recipient', 200, false) ?? null;
    const { secret, sha256 } = newShareSecret();
    const by = callerOf(ctx).principal.sub;
    const s = await insertShare(deps.db, { collectionId: c.id, tokenSha256: sha256, recipient, expiresAt, createdBy: by });
    auditRecordOf(ctx).detail = { collection: c.id, share: s.id, expiresAt: s.expiresAt.toISOString(), ...(recipient ? { recipient } : {}) };
    deps.log.info({ collection: c.id, share: s.id }, 'collection shared');
    ctx.status = 201;
    const token = shareToken(s.id, secret);
    // The link to hand a person: the token rides in the fragment, never sent to a server (share-link.ts).
    ctx.body = { ...s, token, ...links(ctx, deps, c.id), link: `${origin(ctx, deps)}/collections/${c.id}/open#${token}` };
  };
}

function expiryOf(body: Record<string, unknown>): Date {
  const { expiresAt, expiresInSeconds } = body;
  if ((expiresAt === undefined) === (expiresInSeconds === undefined))
    throw new ApiError(400, 'InvalidShare', 'a share needs an expiry: expiresAt (ISO 8601) or expiresInSeconds, one of the two');
  let at: Date;
  if (expiresInSeconds !== undefined) {
    if (typeof expiresInSeconds !== 'number' || !Number.isInteger(expiresInSeconds) || expiresInSeconds < 1)
      throw new ApiError(400, 'InvalidShare', 'expiresInSeconds must be a whole number of seconds, at least 1');
    at = new Date(Date.now() + expiresInSeconds * 1000);
  } else {
    if (typeof expiresAt !== 'string' || !/^\d{4}-\d{2}-\d{2}T/.test(expiresAt) || Number.isNaN(new Date(expiresAt).getTime()))
      throw new ApiError(400, 'InvalidShare', 'expiresAt must be a date and time in ISO 8601, such as 2027-01-31T18:00:00Z');
    at = new Date(expiresAt);
    if (at.getTime() <= Date.now()) throw new ApiError(400, 'InvalidShare', 'expiresAt is in the past');
  }
  if (at.getTime() > Date.now() + MAX_SHARE_DAYS * 86_400_000) throw new ApiError(400, 'InvalidShare', `a share lasts at most ${MAX_SHARE_DAYS} days`);
  return at;
}

/** DELETE …/shares/{id}: the token is refused from the next request on (on this app at once, on others within AUTH_REVOCATION_CHECK_SECONDS). */
function unshare(deps: AppDeps, directory: CollectionDirectory) {
  return async (ctx: RouterContext): Promise<void> => {
    const c = await named(ctx, deps);
    const id = ctx.params.shareId;
    const done = await revokeShare(deps.db, c.id, id, callerOf(ctx).principal.sub);
    if (!done) throw new ApiError(404, 'ShareNotFound', `collection ${c.id} has no share ${id.slice(0, 40)}`);
    directory.forgetShare(id);
    auditRecordOf(ctx).detail = { collection: c.id, share: id, alreadyRevoked: !done.revokedNow };
    ctx.body = { id, revoked: true, alreadyRevoked: !done.revokedNow };
  };
}
