import type { RouterContext } from '@koa/router';
import { Readable } from 'node:stream';
import { auditRecordOf } from '../audit.js';
import type { AppDeps } from '../deps.js';
import type { DeidView } from '../deid/research.js';
import { ApiError } from '../errors.js';
import type { PartBody } from '../http/multipart.js';
import { readFields } from '../http/body.js';
import { callerOf } from '../http/guard.js';
import { listMembers } from '../collections/rows.js';
import { type DirectoryFile, writeDicomdir } from './dicomdir.js';
import { exportedBytes, plan, sentUid, type Planned } from './source.js';
import { targetsOf, type NamedTarget } from './targets.js';
import { type ZipEntry, zipStream } from './zip.js';

// The export download: a zip of Part-10 files and their DICOMDIR (PS3.10
// §8, a file-set as on removable media), of what the caller may see, as
// WADO-RS would send it to the caller (de-identified for a caller of a
// de-identified view). The files stream into the zip one after the other;
// the DICOMDIR, made from the index's attributes, comes last.

/** GET /api/export/studies/{study}.zip */
export function downloadStudy(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const studyUid = ctx.params.studyUid;
    const view = deps.research?.viewOf(callerOf(ctx));
    await sendZip(deps, ctx, [{ target: { studyUid }, given: { studyUid } }], `${sentUid(view, studyUid)}.zip`);
  };
}

/** POST /api/export/zip with {studies, series} (JSON or an HTML form). */
export function downloadSelection(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const targets = await targetsOf(deps, callerOf(ctx), await readFields(ctx));
    await sendZip(deps, ctx, targets, 'export.zip');
  };
}

/**
 * GET /collections/{id}/export.zip: every member of a collection the caller
 * reads through its root (server/collections/scope.ts), so the Caller is
 * confined to the collection and the view is the collection's profile.
 * Members the caller cannot see are left out.
 */
export function downloadCollection(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const id = ctx.params.collectionId;
    const targets = (await listMembers(deps.db, id)).map((m): NamedTarget => {
      const t = m.seriesUid ? { studyUid: m.studyUid, seriesUid: m.seriesUid } : { studyUid: m.studyUid };
      return { target: t, given: t };
    });
    await sendZip(deps, ctx, targets, `collection-${id}.zip`, { skipMissing: true });
  };
}

async function sendZip(deps: AppDeps, ctx: RouterContext, targets: NamedTarget[], filename: string, opts: { skipMissing?: boolean } = {}): Promise<void> {
  const caller = callerOf(ctx);
  const view = deps.research?.viewOf(caller);
  const planned = await plan(deps, caller, targets, view, opts);
  if (!planned.length) throw new ApiError(404, 'NothingToExport', 'the collection holds no instance you may see');
  const sent = planned.filter((p) => !p.withheld);
  const held = planned.filter((p) => p.withheld);
  // The audit row names what leaves: a withheld instance does not.
  for (const p of held) caller.touched.instances.delete(p.row.sopInstanceUid);
  if (!sent.length) {
    const first = held[0];
    throw new ApiError(
      403,
      'InstanceWithheld',
      `instance ${sentUid(view, first.row.sopInstanceUid)} is withheld from this de-identified view: ${first.withheld}; nothing is left to export`,
    );
  }
  const files = fileSet(sent, view);
  if (view && deps.research) {
    for (const f of files) deps.research.note(caller, view, f.attrs);
    // The pseudonyms in the zip are written before it leaves, so the caller can name them in later requests.
    await deps.research.flush(deps.db, caller);
  }
  const record = auditRecordOf(ctx);
  record.detail = { ...record.detail, export: { format: 'zip', files: sent.length, withheld: held.length, ...(view ? { project: view.project } : {}) } };
  // The first file is opened before the response starts: a blob store that is down answers 503, not a cut zip.
  // Each next file is opened while the one before is sent, so the wait for a blob overlaps with writing.
  let next: Promise<PartBody> = Promise.resolve(await exportedBytes(deps, view, sent[0].row));
  function* entries(): Generator<ZipEntry> {
    try {
      for (let i = 0; i < sent.length; i++) {
        const body = next;
        next = i + 1 < sent.length ? exportedBytes(deps, view, sent[i + 1].row) : Promise.resolve(Buffer.alloc(0));
        // A prefetched file never reached (the client left) must not become an unhandled rejection.
        next.catch(() => undefined);
        yield { name: files[i].fileId.join('/'), body: () => body };
      }
      yield { name: 'DICOMDIR', body: async () => writeDicomdir(files) };
    } finally {
      // The client left mid-zip: a blob stream opened ahead is closed, not left holding its file or connection.
      next.then((b) => b instanceof Readable && b.destroy()).catch(() => undefined);
    }
  }
  if (held.length)
    ctx.set('Warning', `299 cairn "${held.length} instance(s) withheld from this de-identified view: they may carry burned-in identifying text"`);
  ctx.set('Content-Disposition', `attachment; filename="${filename}"`);
  ctx.type = 'application/zip';
  ctx.body = Readable.from(zipStream(entries()));
}

/**
 * The File IDs (PS3.10 §8.2: at most 8 components of up to 8 characters
 * A–Z, 0–9, "_") and attributes of the files: DICOM/Pnnnnnnn/Snnnnnnn/
 * Ennnnnnn/Innnnnnn by patient, study, series and instance.
 */
function fileSet(sent: Planned[], view: DeidView | undefined): DirectoryFile[] {
  const numbers = { patient: new Map<string, number>(), study: new Map<string, number>(), series: new Map<string, number>() };
  const numberOf = (m: Map<string, number>, key: string) => {
    let n = m.get(key);
    if (n === undefined) m.set(key, (n = m.size + 1));
    return n;
  };
  return sent.map((p, i) => {
    const s = p.stored;
    const patientKey = JSON.stringify([s['00100020']?.Value ?? null, s['00100021']?.Value ?? null, s['00100010']?.Value ?? null]);
    const id = (letter: string, n: number) => `${letter}${String(n).padStart(7, '0')}`;
    return {
      fileId: [
        'DICOM',
        id('P', numberOf(numbers.patient, patientKey)),
        id('S', numberOf(numbers.study, p.row.studyUid)),
        id('E', numberOf(numbers.series, p.row.seriesUid)),
        id('I', i + 1),
      ],
      attrs: view ? view.deidentifier.apply(s) : s,
      transferSyntaxUid: p.row.transferSyntaxUid,
      patientKey,
    };
  });
}
