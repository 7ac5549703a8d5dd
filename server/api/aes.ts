import type { RouterContext } from '@koa/router';
import { auditRecordOf } from '../audit.js';
import { findAe, listAes, removeAe, saveAe, type AeRow } from '../db/aes.js';
import type { AppDeps } from '../deps.js';
import { toRoles } from '../access.js';
import { aeInput, aeRuleProblem, aeTitleProblem, ANY_OTHER_AE, issuesText, type Ae } from '../dimse/aes.js';
import { deidentifiedAeWarning } from '../dimse/deidentified.js';
import { ApiError } from '../errors.js';
import { readFields } from '../http/body.js';

// /api/aes (admin): the application entities DIMSE answers, as principals
// with roles and clearances (server/dimse/aes.ts). An AE added is let in by
// every replica's DIMSE listener at once; one changed or removed is seen at
// its next association after at most DIMSE_AES_REFRESH_SECONDS; associations
// already open go on as they began.

/** An AE as the API shows it. */
export interface AeJson {
  title: string;
  host: string | null;
  port: number | null;
  roles: string[];
  clearances: string[];
  moveDestination: boolean;
}

const fromRow = (r: AeRow): AeJson => ({
  title: r.title,
  host: r.host,
  port: r.port,
  roles: [...r.roles],
  clearances: [...r.clearances],
  moveDestination: r.move_destination,
});

const fromConfig = (a: Ae): AeJson => ({
  title: a.title,
  host: a.host ?? null,
  port: a.port ?? null,
  roles: [...a.principal.roles],
  clearances: [...a.principal.clearances],
  moveDestination: a.moveDestination,
});

/** The AEs as configured by DIMSE_AES / DIMSE_AES_FILE, "*" last when it is given. */
function configured(deps: AppDeps): AeJson[] {
  const { registry } = deps.config.dimse;
  const list = [...registry.aes.values()].map(fromConfig).sort((x, y) => (x.title < y.title ? -1 : 1));
  const u = registry.unknown;
  if (u) list.push({ title: ANY_OTHER_AE, host: null, port: null, roles: [...u.roles], clearances: [...u.clearances], moveDestination: false });
  return list;
}

function titleOf(ctx: RouterContext): string {
  const title = ctx.params.title;
  const problem = aeTitleProblem(title);
  if (problem) throw new ApiError(400, 'InvalidAeTitle', problem);
  return title.trim();
}

function fromDatabase(deps: AppDeps): boolean {
  return deps.config.dimse.aesSource === 'database';
}

function writable(deps: AppDeps): void {
  if (!fromDatabase(deps))
    throw new ApiError(409, 'AeRegistryConfigured', 'the AE registry is set by DIMSE_AES or DIMSE_AES_FILE: change it there, or unset both to manage AEs here');
}

/** GET /api/aes: every registered AE, and where the registry comes from. */
export function listAesRoute(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const aes = fromDatabase(deps) ? (await listAes(deps.db)).map(fromRow) : configured(deps);
    ctx.body = { source: deps.config.dimse.aesSource, aes };
  };
}

/** GET /api/aes/:title */
export function getAeRoute(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const title = titleOf(ctx);
    const ae = fromDatabase(deps) ? await findAe(deps.db, title).then((r) => r && fromRow(r)) : configured(deps).find((a) => a.title === title);
    if (!ae) throw new ApiError(404, 'AeNotFound', `AE ${title} is not registered`);
    ctx.body = ae;
  };
}

/**
 * PUT /api/aes/:title {"host": "10.1.2.3", "port": 104, "roles": ["uploader"],
 * "clearances": [], "moveDestination": false}: registers the AE, or replaces
 * what was registered under its title. 201 when added, 200 when replaced.
 * When the AE's roles read through a de-identified view, the answer carries
 * a `warning` saying what DIMSE will then serve it, as `npm run ae` and the
 * listener's log do: an administrator registering a research workstation
 * learns it here, not from its first empty C-FIND.
 */
export function putAeRoute(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const title = titleOf(ctx);
    writable(deps);
    const parsed = aeInput.safeParse(await readFields(ctx));
    if (!parsed.success) throw new ApiError(400, 'InvalidAe', issuesText(parsed.error));
    const problem = aeRuleProblem(title, parsed.data);
    if (problem) throw new ApiError(400, 'InvalidAe', problem);
    const { host, port, roles, clearances, moveDestination } = parsed.data;
    const row: AeRow = { title, host, port, roles, clearances, move_destination: moveDestination };
    const { before, added } = await deps.db.transaction(async (trx) => {
      const before = await findAe(trx, title);
      return { before, added: await saveAe(trx, row) };
    });
    const after = fromRow(row);
    auditRecordOf(ctx).detail = { title, change: added ? 'add' : 'set', ...(before ? { before: fromRow(before) } : {}), after };
    const warning = deidentifiedAeWarning(deps.research, title, { sub: `ae:${title}`, roles: toRoles(roles), clearances });
    deps.log.info({ aeTitle: title, added, ...(warning ? { warning } : {}) }, 'AE registered');
    ctx.status = added ? 201 : 200;
    ctx.body = warning ? { ...after, warning } : after;
  };
}

/** DELETE /api/aes/:title: 204, or 404 when no AE had that title. */
export function deleteAeRoute(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const title = titleOf(ctx);
    writable(deps);
    const before = await deps.db.transaction(async (trx) => {
      const row = await findAe(trx, title);
      if (row) await removeAe(trx, title);
      return row;
    });
    if (!before) throw new ApiError(404, 'AeNotFound', `AE ${title} is not registered`);
    auditRecordOf(ctx).detail = { title, change: 'remove', before: fromRow(before) };
    deps.log.info({ aeTitle: title }, 'AE removed');
    ctx.status = 204;
  };
}
