import Router, { type RouterContext } from '@koa/router';
import type { Db } from '../db/knex.js';
import type { AppDeps } from '../deps.js';
import { isValidUid } from '../dicom/uid.js';
import { ApiError } from '../errors.js';
import { guard } from '../http/guard.js';

// Provenance of an instance, for admins and auditors: what the index knows
// of it (size, SHA-256, when it was indexed, its place) and every event the
// audit trail and the change sequence hold on it, oldest first: who stored
// it, with which roles, over which protocol (STOW, upload page, DIMSE, the
// import command), from which address or AE title, and every later
// retrieval, relabelling, rejection or deletion of it, its series or study.
// It reads the same tables the audit trail is written to: nothing new is
// recorded for it.

/** An instance's provenance as sent. */
export interface Provenance {
  sopInstanceUid: string;
  studyUid: string | null;
  seriesUid: string | null;
  stored: { at: string; size: number; sha256: string; transferSyntaxUid: string; sopClassUid: string } | null;
  events: ProvenanceEvent[];
}

interface ProvenanceEvent {
  at: string;
  source: 'audit' | 'changes';
  action: string;
  sub?: string | null;
  roles?: string[];
  protocol?: string;
  client?: string | null;
  callingAe?: string;
  command?: string;
  /** The collection (server/collections/) the instance was read through, de-identified by its profile. */
  collection?: string;
  method?: string | null;
  path?: string | null;
  status?: number | null;
  outcome?: string;
  breakGlass?: boolean;
  /** For an export: how it left (a zip, or STOW-RS to a destination: the job, the destination, the profile). */
  export?: Record<string, unknown>;
  /** What the event was on: this instance, or its series or study as a whole. */
  scope: 'instance' | 'series' | 'study';
}

export function provenanceRouter(deps: AppDeps): Router {
  const r = new Router({ prefix: '/api' });
  r.get('/instances/:sopInstanceUid/provenance', guard('audit', 'audit-read'), async (ctx: RouterContext) => {
    const uid = ctx.params.sopInstanceUid;
    if (!isValidUid(uid)) throw new ApiError(400, 'InvalidUid', `sopInstanceUid "${uid}" is not a valid DICOM UID`);
    const p = await readProvenance(deps.db, uid);
    if (!p) throw new ApiError(404, 'InstanceNotFound', `instance ${uid} has no provenance: it was never stored or touched here`);
    ctx.body = p;
  });
  return r;
}

/** The provenance of one instance, or null when neither the index nor the trails know it. */
export async function readProvenance(db: Db, sopInstanceUid: string): Promise<Provenance | null> {
  const row = await db('instances')
    .where({ sop_instance_uid: sopInstanceUid })
    .first('study_uid', 'series_uid', 'size', 'sha256', 'created_at', 'transfer_syntax_uid', 'sop_class_uid');
  const changes = await db('changes').where({ sop_instance_uid: sopInstanceUid }).orderBy('seq');
  // Where the instance lives now, or lived when it was last changed (deleted instances keep their trail).
  const studyUid: string | null = row?.study_uid ?? changes.at(-1)?.study_uid ?? null;
  const seriesUid: string | null = row?.series_uid ?? changes.at(-1)?.series_uid ?? null;
  const audit = await db('audit_events')
    .where((q) => {
      q.whereRaw('? = any(instance_uids)', [sopInstanceUid]);
      // An event on the whole series or study (a label change, a deletion) names no instance.
      if (seriesUid) q.orWhereRaw(`? = any(series_uids) and cardinality(instance_uids) = 0`, [seriesUid]);
      if (studyUid) q.orWhereRaw(`? = any(study_uids) and cardinality(series_uids) = 0 and cardinality(instance_uids) = 0`, [studyUid]);
    })
    .orderBy('id');
  const seriesChanges = seriesUid ? await db('changes').where({ series_uid: seriesUid }).whereNull('sop_instance_uid').orderBy('seq') : [];
  const studyChanges = studyUid ? await db('changes').where({ study_uid: studyUid }).whereNull('series_uid').orderBy('seq') : [];
  if (!row && !changes.length && !audit.length) return null;
  const events: ProvenanceEvent[] = [
    ...audit.map(
      (a): ProvenanceEvent => ({
        at: new Date(a.at).toISOString(),
        source: 'audit',
        action: a.action,
        sub: a.sub,
        roles: a.roles,
        protocol: a.protocol,
        client: a.client,
        ...(a.detail?.callingAe ? { callingAe: a.detail.callingAe } : {}),
        ...(a.detail?.command ? { command: a.detail.command } : {}),
        ...(a.detail?.collection ? { collection: a.detail.collection } : {}),
        ...(a.detail?.export ? { export: a.detail.export } : {}),
        method: a.method,
        path: a.path,
        status: a.status,
        outcome: a.outcome,
        breakGlass: a.break_glass,
        scope: a.instance_uids.includes(sopInstanceUid) ? 'instance' : a.series_uids.length ? 'series' : 'study',
      }),
    ),
    ...[...changes, ...seriesChanges, ...studyChanges].map(
      (c): ProvenanceEvent => ({
        at: new Date(c.at).toISOString(),
        source: 'changes',
        action: c.kind,
        // A relabel is written per instance but changed the labels of its study or series.
        scope: c.relabel_level ?? (c.sop_instance_uid ? 'instance' : c.series_uid ? 'series' : 'study'),
      }),
    ),
  ].sort((x, y) => x.at.localeCompare(y.at));
  return {
    sopInstanceUid,
    studyUid,
    seriesUid,
    stored: row
      ? {
          at: new Date(row.created_at).toISOString(),
          size: Number(row.size),
          sha256: row.sha256,
          transferSyntaxUid: row.transfer_syntax_uid,
          sopClassUid: row.sop_class_uid,
        }
      : null,
    events,
  };
}
