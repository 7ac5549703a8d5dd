import type { RouterContext } from '@koa/router';
import { randomUUID } from 'node:crypto';
import { permits, type Caller } from '../access.js';
import { auditRecordOf } from '../audit.js';
import type { AppDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import { readFields } from '../http/body.js';
import { checkText } from '../http/client-text.js';
import { callerOf } from '../http/guard.js';
import { plan, profileName, profileView, sentUid } from './source.js';
import {
  addDestination,
  cancelJob,
  type Destination,
  findDestination,
  insertJob,
  itemCounts,
  itemProblems,
  type JobRow,
  listDestinations,
  listJobs,
  readJob,
  removeDestination,
} from './store.js';
import { targetsOf } from './targets.js';

// Destinations (other DICOMweb archives an administrator registered) and
// push jobs to them: started by a caller for what it may see, run by the
// job runner (runner.ts) of whichever replica takes them, followed here.

const NAME = /^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,63}$/;

/** An administrator manages destinations and every job; anyone else follows the jobs they started. */
function manages(caller: Caller): boolean {
  return permits(caller.principal, 'user');
}

function shownDestination(d: Destination, full: boolean) {
  return { id: d.id, name: d.name, ...(full ? { url: d.url, hasToken: d.token !== null, createdBy: d.createdBy, createdAt: d.createdAt } : {}) };
}

/** GET /api/export/destinations: names for everyone who may export; URLs for administrators. Never the tokens. */
export function getDestinations(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const full = manages(callerOf(ctx));
    ctx.body = { destinations: (await listDestinations(deps.db)).map((d) => shownDestination(d, full)) };
  };
}

/** POST /api/export/destinations {name, url, token?} (administrators). */
export function postDestination(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const body = await readFields(ctx);
    const { name, url, token } = body;
    if (typeof name !== 'string' || !NAME.test(name))
      throw new ApiError(400, 'InvalidDestination', 'name must be 1-64 letters, digits, spaces, "_", ".", ":" or "-", starting with a letter or digit');
    if (typeof url !== 'string') throw new ApiError(400, 'InvalidDestination', 'url must be the DICOMweb root of the destination (http or https)');
    checkText('url', url);
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ApiError(400, 'InvalidDestination', `url "${url}" is not a URL`);
    }
    if (!['http:', 'https:'].includes(parsed.protocol)) throw new ApiError(400, 'InvalidDestination', 'url must be http or https');
    if (parsed.username || parsed.password || parsed.search || parsed.hash)
      throw new ApiError(400, 'InvalidDestination', 'url must have no user, password, query or fragment: give a token for credentials');
    if (token !== undefined && token !== null && (typeof token !== 'string' || !/^[\x21-\x7e]{1,4096}$/.test(token)))
      throw new ApiError(400, 'InvalidDestination', 'token must be the bearer token as printable text without spaces (at most 4096 characters)');
    const d = await addDestination(deps.db, {
      id: randomUUID(),
      name,
      url: parsed.href.replace(/\/+$/, ''),
      token: typeof token === 'string' ? token : null,
      createdBy: callerOf(ctx).principal.sub,
    });
    if (!d) throw new ApiError(409, 'DestinationExists', `a destination named "${name}" exists already`);
    auditRecordOf(ctx).detail = { destination: { id: d.id, name: d.name, url: d.url } };
    ctx.status = 201;
    ctx.set('Location', `/api/export/destinations/${d.id}`);
    ctx.body = shownDestination(d, true);
  };
}

/** DELETE /api/export/destinations/{id} (administrators): its unfinished jobs fail when next taken. */
export function deleteDestination(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const d = await findDestination(deps.db, ctx.params.id);
    if (!d || !(await removeDestination(deps.db, d.id))) throw new ApiError(404, 'DestinationNotFound', `destination ${ctx.params.id} was not found`);
    auditRecordOf(ctx).detail = { destination: { id: d.id, name: d.name, url: d.url } };
    ctx.status = 204;
  };
}

/**
 * POST /api/exports {destination, studies?, series?, profile?}: a push job
 * of the instances the caller may see under those studies and series, sent
 * as stored or de-identified by `profile`. A caller of a de-identified view
 * always exports through its own view. 202 with the job's progress.
 */
export function postExport(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const caller = callerOf(ctx);
    const body = await readFields(ctx);
    if (typeof body.destination !== 'string' || !body.destination)
      throw new ApiError(400, 'InvalidExport', 'destination must name a registered destination (its id or name)');
    if (body.profile !== undefined && body.profile !== null && typeof body.profile !== 'string')
      throw new ApiError(400, 'InvalidExport', 'profile must name a configured de-identification profile');
    const destination = await findDestination(deps.db, body.destination);
    if (!destination) throw new ApiError(400, 'UnknownDestination', `no destination "${body.destination}" is registered`);
    const own = deps.research?.viewOf(caller);
    const asked = typeof body.profile === 'string' && body.profile ? profileView(deps, body.profile) : undefined;
    if (own && asked && asked !== own)
      throw new ApiError(403, 'ProfileNotAllowed', 'a caller of a de-identified view exports through its own view and cannot choose another profile');
    const view = own ?? asked;
    const profile = view ? profileName(deps, view) : undefined;
    const targets = await targetsOf(deps, caller, body);
    const planned = await plan(deps, caller, targets, view);
    const id = randomUUID();
    await insertJob(
      deps.db,
      {
        id,
        destination_id: destination.id,
        destination_name: destination.name,
        sub: caller.principal.sub,
        roles: [...caller.principal.roles],
        clearances: [...caller.principal.clearances],
        break_glass: caller.breakGlass ?? null,
        client: caller.via.protocol === 'cli' ? null : caller.via.address,
        profile: profile ?? null,
      },
      planned.map((p) => ({
        studyUid: p.row.studyUid,
        seriesUid: p.row.seriesUid,
        sopInstanceUid: p.row.sopInstanceUid,
        sentUid: sentUid(view, p.row.sopInstanceUid),
        state: p.withheld ? 'withheld' : 'pending',
        ...(p.withheld ? { reason: `withheld by the de-identification profile: ${p.withheld}` } : {}),
      })),
    );
    auditRecordOf(ctx).detail = { export: { format: 'stow', job: id, destination: { id: destination.id, name: destination.name }, profile: profile ?? null } };
    ctx.status = 202;
    ctx.set('Location', `/api/exports/${id}`);
    ctx.body = await progress(deps, (await readJob(deps.db, id))!);
  };
}

/** GET /api/exports: the caller's jobs (an administrator's: everyone's), newest first. */
export function getExports(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const caller = callerOf(ctx);
    const jobs = await listJobs(deps.db, manages(caller) ? undefined : caller.principal.sub, 100);
    ctx.body = { exports: await Promise.all(jobs.map((j) => progress(deps, j, false))) };
  };
}

/** GET /api/exports/{id}: a job's state and counts, and the instances that failed or were withheld. */
export function getExport(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    ctx.body = await progress(deps, await ownJob(deps, ctx));
  };
}

/** DELETE /api/exports/{id}: cancels a job that has not finished; what was sent stays sent. */
export function deleteExport(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const job = await ownJob(deps, ctx);
    if (!(await cancelJob(deps.db, job.id))) throw new ApiError(409, 'ExportFinished', `export ${job.id} has finished (${job.state})`);
    ctx.body = await progress(deps, (await readJob(deps.db, job.id))!);
  };
}

/** A job the caller may follow; others' jobs are 404 like jobs that do not exist. */
async function ownJob(deps: AppDeps, ctx: RouterContext): Promise<JobRow> {
  const id = ctx.params.id;
  const caller = callerOf(ctx);
  const job = /^[0-9a-f-]{36}$/.test(id) ? await readJob(deps.db, id) : undefined;
  if (!job || (job.sub !== caller.principal.sub && !manages(caller))) throw new ApiError(404, 'ExportNotFound', `export ${id} was not found`);
  return job;
}

/** What a job's progress shows: never an original UID of a de-identified job (items are named as sent). */
async function progress(deps: AppDeps, job: JobRow, problems = true) {
  const counts = await itemCounts(deps.db, job.id);
  return {
    id: job.id,
    state: job.state,
    destination: { id: job.destination_id, name: job.destination_name },
    profile: job.profile,
    total: job.total,
    done: counts.done,
    failed: counts.failed,
    withheld: counts.withheld,
    pending: counts.pending,
    createdAt: new Date(job.created_at).toISOString(),
    startedAt: job.started_at ? new Date(job.started_at).toISOString() : null,
    finishedAt: job.finished_at ? new Date(job.finished_at).toISOString() : null,
    ...(job.error ? { error: job.error } : {}),
    ...(problems ? { problems: await itemProblems(deps.db, job.id, 100) } : {}),
  };
}
