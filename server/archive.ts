import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import type { BlobStore } from './blob/blob-store.js';
import { newInstanceKey, recentInstancePrefixes } from './blob/blob-store.js';
import type { Config } from './config.js';
import type { Knex } from 'knex';
import {
  deleteInstances,
  deleteRejected,
  indexedBlobKeys,
  indexInstance,
  rejectedBefore,
  rejectInstances,
  restoreInstances,
  withPurgeLock,
  type IndexOutcome,
} from './db/write.js';
import { batchIndexer, type InstanceIndexer } from './db/batch-index.js';
import type { Db } from './db/knex.js';
import { buildRows } from './db/build-rows.js';
import { replaceLabels, type LabelTarget } from './db/labels.js';
import { findInstances, findMetadata, type Target } from './db/lookup.js';
import { ParseError, parseInstance, type ParsedInstance } from './dicom/parse.js';
import { buildRejectionNote, rejectionNote } from './dicom/rejection-note.js';
import type { DicomJson } from './dicom/json.js';
import { ApiError, DicomStatus, StorageUnavailableError } from './errors.js';
import { labelsFor } from './labels.js';
import { permits, visible, type Action, type Caller } from './access.js';
import { DERIVED_SOP_CLASSES, derivedClassName, patientIdOf } from './dicom/derived.js';
import type { SeriesRow, StudyRow } from './db/rows.js';
import type { Logger } from './log.js';
import { dropThumbnails } from './render/thumbnails.js';

// The archive is the only writer (DESIGN.md): every store, delete, relabel
// and reject (a stored rejection note), whatever protocol asked for it, goes through here with the
// protocol adapter's Caller. Each checks that the caller's roles allow it,
// writes the index rows and their change rows in one statement or
// transaction (db/write.ts), and notes what it changed in the caller's
// touched UIDs, which the adapter's audit row then names (audit.ts).

export interface ArchiveContext {
  db: Db;
  blobs: BlobStore;
  config: Config;
  /** Where the archive reports what went wrong (blob deletes that failed, index errors). */
  log: (entry: Record<string, unknown>) => void;
  /**
   * Writes the index rows of the instances stored through this context
   * (db/batch-index.ts): batchIndexer writes those that are ready together. Without
   * one, each instance is written by its own statement.
   */
  indexer?: InstanceIndexer;
}

/** The same context under the name the store path has always used. */
export type StoreContext = ArchiveContext;

/**
 * The archive's context from an app's or a command's dependencies, reporting
 * at warn level. The instances stored through one context (one STOW-RS
 * request) share its batch indexer.
 */
export function archiveContext(deps: { db: Db; blobs: BlobStore; config: Config; log: Logger }): ArchiveContext {
  return { db: deps.db, blobs: deps.blobs, config: deps.config, log: (entry) => deps.log.warn(entry), indexer: batchIndexer(deps.db) };
}

/** Writes are checked here too, not only by the HTTP guard: a DIMSE or command-line adapter gets the same rule. */
function authorise(caller: Caller, action: Action): void {
  if (!permits(caller.principal, action)) throw new ApiError(403, 'Forbidden', `the roles [${caller.principal.roles.join(', ')}] may not ${action}`);
}

export type StoreOutcome =
  | {
      ok: true;
      studyUid: string;
      seriesUid: string;
      sopInstanceUid: string;
      sopClassUid: string;
      warning?: number;
      duplicate: boolean;
      /** The instance is a rejection note (IHE IOCM): its title, and how many instances it rejected now. */
      rejection?: { code: string; rejected: number };
      /** Stored by a reader under the derived-object rule: the name of its SOP Class. */
      derived?: string;
    }
  | {
      ok: false;
      reason: number;
      message: string;
      sopInstanceUid?: string;
      sopClassUid?: string;
      storageUnavailable?: true;
      /** Refused by the derived-object rule: `message` says why, and may be shown to the caller. */
      refused?: true;
    };

/**
 * A reader's instance whose SOP Class is not a derived object: refused as a
 * store by a role that may not store is (403, and 0x0124 over DIMSE). Carries
 * the instance's UIDs, so that an adapter storing several instances can
 * answer it as that instance's failure instead (server/dicomweb/stow.ts).
 */
export class RefusedInstance extends ApiError {
  constructor(
    message: string,
    readonly refs: { sopInstanceUid: string; sopClassUid: string },
  ) {
    super(403, 'Forbidden', message);
  }
}

/**
 * For an adapter that stores several instances in one request (STOW-RS): a
 * reader's instance of a SOP Class it may not store fails alone, with 0x0124
 * (Refused: Not Authorized), and the instances beside it are still stored
 * (PS3.18 §10.5.3: the status is chosen from all outcomes).
 */
export function failAlone(outcome: Promise<StoreOutcome>): Promise<StoreOutcome> {
  return outcome.catch((err: unknown) => {
    if (!(err instanceof RefusedInstance)) throw err;
    return { ok: false, reason: DicomStatus.NotAuthorized, message: err.message, ...err.refs, refused: true };
  });
}

/**
 * What a caller may store: anything (the store role), or only derived
 * objects into a study it can see (the annotate action, a reader's).
 */
type StoreScope = 'any' | 'derived';

function storeScope(caller: Caller): StoreScope {
  if (permits(caller.principal, 'store')) return 'any';
  if (permits(caller.principal, 'annotate')) return 'derived';
  throw new ApiError(403, 'Forbidden', `the roles [${caller.principal.roles.join(', ')}] may not store`);
}

/**
 * What every ingest adapter does with its outcomes: each goes to the log
 * (UIDs and DICOM codes only, never patient data). The stored UIDs are
 * already in the caller's touched UIDs, for its audit row.
 */
export function recordOutcomes(outcomes: readonly StoreOutcome[], log: Logger): void {
  for (const o of outcomes) {
    if (o.ok) log.info({ sopInstanceUid: o.sopInstanceUid, studyUid: o.studyUid, duplicate: o.duplicate }, 'stored');
    else log.warn({ sopInstanceUid: o.sopInstanceUid, reason: `0x${o.reason.toString(16).toUpperCase()}`, message: o.message }, 'store failed');
  }
}

/**
 * The one store path under every ingest adapter (STOW-RS now, uploads and
 * DIMSE later). Write order is fixed (DESIGN.md): blob first under a fresh
 * server-generated key, then the index rows in one transaction, then the
 * answer. Any failure after the blob is written deletes the blob, so a failed
 * instance leaves no trace; a crash in between leaves at most an orphan blob
 * for sweepOrphans().
 */
export async function storeInstance(ctx: ArchiveContext, caller: Caller, body: AsyncIterable<Buffer>, expectStudyUid?: string): Promise<StoreOutcome> {
  return (await receiveInstance(ctx, caller, body, expectStudyUid)).outcome;
}

/**
 * The same store, in two steps for adapters that stream several instances:
 * resolves once `body` has been read to its end (so the caller may go on
 * reading the next part), with `outcome` settling when the blob is durable
 * and the index committed. `outcome` never rejects with an unhandled error:
 * failures after the body was read are settled values or rethrown when
 * awaited.
 */
export async function receiveInstance(
  ctx: ArchiveContext,
  caller: Caller,
  body: AsyncIterable<Buffer>,
  expectStudyUid?: string,
  announced?: AnnouncedInstance,
): Promise<Received> {
  const scope = storeScope(caller);
  const key = newInstanceKey(randomUUID());
  const sink = new PassThrough({ highWaterMark: 1024 * 1024 });
  // The store sees sink errors through its own pipeline; this listener only
  // keeps an abort before the store has attached from being unhandled.
  sink.on('error', () => undefined);
  // The blob write starts only once the part's first 132 bytes show a
  // Part-10 file (the preamble and "DICM", PS3.10 §7.1): a part that is
  // empty, tiny or not DICOM fails from those bytes alone and never costs a
  // blob write and delete.
  let put: Promise<unknown> | undefined;
  const hash = createHash('sha256');
  let size = 0;
  async function* tee(): AsyncGenerator<Buffer> {
    let head: Buffer[] | undefined = [];
    const copy = async (chunk: Buffer) => {
      // A failed blob write stops the copying, not the reading: the part is
      // still read to its end and then fails alone (see finish()).
      if (!sink.destroyed && !sink.write(chunk)) await once(sink, 'drain').catch(() => undefined);
    };
    try {
      for await (const chunk of body) {
        hash.update(chunk);
        size += chunk.length;
        if (put) await copy(chunk);
        else if (head) {
          head.push(chunk);
          if (size >= PART10_PREFIX) {
            const prefix = Buffer.concat(head);
            const held = head;
            head = undefined;
            if (prefix.toString('latin1', 128, 132) === 'DICM') {
              put = ctx.blobs.put(key, sink);
              put.catch((err) => sink.destroy(err));
              for (const c of held) await copy(c);
            }
          }
        }
        yield chunk;
      }
      sink.end();
    } finally {
      // A request that broke off mid-part must fail the blob write, not leave it waiting.
      if (!sink.writableEnded) sink.destroy(new Error('the instance stream ended early'));
    }
  }

  let parsed: ParsedInstance;
  try {
    parsed = await parseInstance(tee(), {
      bulkThreshold: ctx.config.bulkDataThreshold,
      maxHeaderBytes: ctx.config.maxHeaderBytes,
      maxSequenceDepth: ctx.config.maxSequenceDepth,
      maxDataElements: ctx.config.maxDataElements,
    });
  } catch (err) {
    if (!sink.writableEnded) sink.destroy(new Error('the instance could not be parsed'));
    if (put) {
      await put.catch(() => undefined);
      await discardBlob(ctx, key);
    }
    if (err instanceof ParseError) {
      const { message, sopInstanceUid, sopClassUid } = err.failure;
      return { outcome: Promise.resolve({ ok: false, reason: failureReason(err), message, sopInstanceUid, sopClassUid }), written: Promise.resolve() };
    }
    // The request itself broke (a malformed body, a client that hung up): the caller ends the request.
    if (err instanceof ApiError || (err as NodeJS.ErrnoException).code) throw err;
    // Anything else is a fault in reading this one instance: it fails alone.
    ctx.log({ msg: 'instance could not be processed', error: String((err as Error).stack ?? err) });
    return {
      outcome: Promise.resolve({ ok: false, reason: DicomStatus.ProcessingFailure, message: 'the instance could not be processed' }),
      written: Promise.resolve(),
    };
  }
  // A parsed instance began with "DICM", so its blob write was started.
  const outcome = finish(
    ctx,
    caller,
    parsed,
    { key, put: put ?? Promise.reject(new Error('no blob write was started')), size, sha256: hash.digest('hex') },
    expectStudyUid,
    scope,
    announced,
  );
  outcome.catch(() => undefined);
  // Settles after finish() has seen the blob write settle (its reaction was registered first).
  const written = (put ?? Promise.resolve()).then(
    () => undefined,
    () => undefined,
  );
  return { outcome, written };
}

/** A part read to its end by receiveInstance. */
export interface Received {
  /** Settles when the blob is durable and the index committed, or the instance failed. */
  outcome: Promise<StoreOutcome>;
  /**
   * Settles (never rejects) once the blob write has ended, well or not: the
   * instance's bytes are then no longer held in memory, and its index rows,
   * if it has any, are with the context's indexer.
   */
  written: Promise<void>;
}

/**
 * The SOP Class and Instance a protocol's request named for the data set it
 * carries (a C-STORE's Affected SOP Class and Instance UIDs, PS3.7 §9.1.1.1):
 * a data set that is another instance, or of another class, is not stored.
 */
export interface AnnouncedInstance {
  sopClassUid: string;
  sopInstanceUid: string;
}

/** The preamble and the "DICM" prefix of a Part-10 file. */
const PART10_PREFIX = 132;

/**
 * Removes a blob the index does not (or no longer) name. Best effort: when
 * the store is down the outcome stands and the blob is an orphan the sweep
 * removes later, never a reason to fail an instance that is stored.
 */
async function discardBlob(ctx: ArchiveContext, key: string): Promise<void> {
  await ctx.blobs.delete(key).catch((err) => ctx.log({ msg: 'blob delete failed; the orphan sweep will remove it', key, error: String(err) }));
}

function failureReason(err: ParseError): number {
  switch (err.failure.kind) {
    case 'unsupported':
      return DicomStatus.TransferSyntaxNotSupported;
    case 'too-large':
      return DicomStatus.OutOfResources;
    case 'invalid':
      return DicomStatus.DataSetDoesNotMatchSopClass;
    default:
      return DicomStatus.CannotUnderstand;
  }
}

async function finish(
  ctx: ArchiveContext,
  caller: Caller,
  parsed: ParsedInstance,
  blob: { key: string; put: Promise<unknown>; size: number; sha256: string },
  expectStudyUid?: string,
  scope: StoreScope = 'any',
  announced?: AnnouncedInstance,
): Promise<StoreOutcome> {
  const { key } = blob;
  const refs = { sopInstanceUid: parsed.sopInstanceUid, sopClassUid: parsed.sopClassUid };
  try {
    await blob.put;
  } catch (err) {
    await ctx.blobs.delete(key).catch(() => undefined);
    ctx.log({ msg: 'blob write failed', error: String(err), sopInstanceUid: parsed.sopInstanceUid });
    // The adapter answers 503 when the store was down for every instance (stow.ts).
    const down = err instanceof StorageUnavailableError ? { storageUnavailable: true as const } : {};
    return { ok: false, reason: DicomStatus.OutOfResources, message: 'the instance could not be written to storage', ...refs, ...down };
  }
  const fail = async (reason: number, message: string, refused?: true): Promise<StoreOutcome> => {
    await discardBlob(ctx, key);
    return { ok: false, reason, message, ...refs, ...(refused ? { refused } : {}) };
  };
  if (expectStudyUid !== undefined && parsed.studyUid !== expectStudyUid) {
    // PS3.18 §10.5.1 Table 10.5.1-1: every instance stored to /studies/{study}
    // shall have that Study Instance UID.
    return fail(DicomStatus.StudyInstanceUidMismatch, `Study Instance UID ${parsed.studyUid} does not match the target study ${expectStudyUid}`);
  }
  // PS3.4 Table B.2-1: 0xA900, the data set does not match the SOP Class; used for the instance too (see CONFORMANCE.md §14.4).
  if (announced && parsed.sopClassUid !== announced.sopClassUid)
    return fail(DicomStatus.DataSetDoesNotMatchSopClass, `data set's SOP Class UID is not the Affected SOP Class UID: ${parsed.sopClassUid}`);
  if (announced && parsed.sopInstanceUid !== announced.sopInstanceUid)
    return fail(DicomStatus.DataSetDoesNotMatchSopClass, `data set's SOP Instance UID is not the Affected SOP Instance UID: ${parsed.sopInstanceUid}`);
  const derived = scope === 'derived' ? derivedClassName(parsed.sopClassUid) : undefined;
  if (scope === 'derived' && !derived) {
    await discardBlob(ctx, key);
    throw new RefusedInstance(
      `the roles [${caller.principal.roles.join(', ')}] may store only derived objects (SR, SEG, presentation states, KOS), not SOP Class ${parsed.sopClassUid}`,
      refs,
    );
  }
  const rows = buildRows(parsed, { blobKey: key, size: blob.size, sha256: blob.sha256 }, labelsFor(ctx.config.labelRules, parsed.dataset));
  // A rejection note rejects what it references in the transaction that indexes it (IHE IOCM).
  const note = rejectionNote(parsed.sopClassUid, parsed.dataset);
  if (derived && note) return fail(DicomStatus.NotAuthorized, 'a rejection note (IHE IOCM) withdraws instances: only a role that may store sends one', true);
  let rejection: { code: string; rejected: number } | undefined;
  const reject = note
    ? async (trx: Knex.Transaction) => {
        const done = await rejectInstances(trx, caller, { kosInstanceUid: parsed.sopInstanceUid, code: note.code, refs: note.refs });
        rejection = { code: note.code.value, rejected: done.length };
      }
    : undefined;
  let outcome: IndexOutcome | Refusal;
  try {
    outcome = derived
      ? await indexDerived(ctx.db, caller, parsed, rows)
      : reject || !ctx.indexer
        ? await indexInstance(ctx.db, rows.study, rows.series, rows.instance, ctx.config.duplicatePolicy === 'overwrite', reject)
        : await ctx.indexer.write(rows.study, rows.series, rows.instance, ctx.config.duplicatePolicy === 'overwrite');
  } catch (err) {
    // Nothing was indexed, so nothing may remain: the blob goes too.
    ctx.log({ msg: 'index write failed', error: String(err), sopInstanceUid: parsed.sopInstanceUid });
    await ctx.blobs.delete(key).catch(() => undefined);
    return { ok: false, reason: DicomStatus.ProcessingFailure, message: 'the instance could not be indexed', ...refs };
  }
  if (outcome.kind === 'refused') return fail(DicomStatus.NotAuthorized, outcome.message, true);
  const stored = {
    ok: true as const,
    studyUid: parsed.studyUid,
    seriesUid: parsed.seriesUid,
    ...refs,
    ...(rejection ? { rejection } : {}),
    ...(derived ? { derived } : {}),
  };
  if (outcome.kind === 'stored' || outcome.kind === 'identical' || outcome.kind === 'replaced') {
    caller.touched.note(parsed);
  }
  switch (outcome.kind) {
    case 'stored':
      return { ...stored, duplicate: false };
    case 'identical':
      await discardBlob(ctx, key);
      return { ...stored, duplicate: true };
    case 'replaced':
      await discardBlob(ctx, outcome.oldBlobKey);
      return { ...stored, duplicate: true };
    case 'conflict':
      return fail(DicomStatus.DuplicateSopInstance, `SOP Instance ${parsed.sopInstanceUid} is already stored with different content`);
    case 'series-elsewhere':
      return fail(DicomStatus.DataSetDoesNotMatchSopClass, `Series ${parsed.seriesUid} already belongs to another study`);
    case 'rejected':
      return fail(DicomStatus.RejectedInstance, `SOP Instance ${parsed.sopInstanceUid} was rejected (IHE IOCM) and is not accepted again`);
  }
}

/** Why the derived-object rule refused an instance, in words the caller may read (no patient data). */
type Refusal = { kind: 'refused'; message: string };

/**
 * Indexes a reader's derived object (server/dicom/derived.ts) under the
 * rule that lets a reader store one: into a study that exists and that the
 * caller can see, never a new patient or study; with the study's Patient ID;
 * into a new series, or an existing one of that study that the caller can
 * see and that holds derived objects only (never beside the images). The new
 * series takes the study's labels, so what was said about a study is as
 * hidden as the study; the study's own labels are left as they are, and an
 * existing instance is never replaced (whatever DUPLICATE_POLICY says).
 *
 * The checks and the index rows are one transaction that holds the study
 * row (FOR SHARE), so a delete or relabel of the study waits for it: a
 * study deleted meanwhile is not created again by the reader's instance,
 * and the labels copied are those it has when the series is written.
 * A study the caller cannot see is refused in the same words as a study that
 * does not exist (DESIGN.md: hidden is exactly like missing).
 */
async function indexDerived(
  db: Db,
  caller: Caller,
  parsed: ParsedInstance,
  rows: { study: StudyRow; series: SeriesRow; instance: ReturnType<typeof buildRows>['instance'] },
): Promise<IndexOutcome | Refusal> {
  return db.transaction(async (trx) => {
    const study: { patient_id: string | null; labels: string[] } | undefined = await trx('studies as st')
      .where('st.study_uid', parsed.studyUid)
      .where(visible(trx, { study: 'st' }, caller))
      .forShare('st')
      .first('st.patient_id', 'st.labels');
    if (!study)
      return refusal(`Study ${parsed.studyUid} was not found: a reader stores derived objects only into an existing study it can see, never a new one`);
    if (patientIdOf(parsed.dataset) !== study.patient_id) return refusal(`the Patient ID (0010,0020) of the instance is not that of study ${parsed.studyUid}`);
    const series = await trx('series').where({ series_uid: parsed.seriesUid }).first('study_uid');
    if (series && series.study_uid === parsed.studyUid) {
      const seen = await trx('series as se')
        .join('studies as st', 'st.study_uid', 'se.study_uid')
        .where('se.series_uid', parsed.seriesUid)
        .where(visible(trx, { study: 'st', series: 'se' }, caller))
        .first(trx.raw('1 as seen'));
      const other = await trx('instances')
        .where({ series_uid: parsed.seriesUid })
        .whereNotIn('sop_class_uid', Object.keys(DERIVED_SOP_CLASSES))
        .first('sop_instance_uid');
      if (!seen || other)
        return refusal(
          `Series ${parsed.seriesUid} is not a series of derived objects this caller can add to: a reader stores into a new series or one of derived objects`,
        );
    }
    const labels = [...new Set([...study.labels, ...rows.series.labels])].sort();
    // A transaction of its own inside this one (a savepoint): indexInstance writes in one when given a step to run after the rows.
    return indexInstance(trx, { ...rows.study, labels: study.labels }, { ...rows.series, labels }, rows.instance, false, async () => undefined);
  });
}

function refusal(message: string): Refusal {
  return { kind: 'refused', message };
}

/**
 * Deletes the instances of a study, series or instance that the caller may
 * see: the index rows and their change rows first, in one transaction, then
 * the blobs. A crash or a blob store failure between the two leaves orphan
 * blobs for the sweep, never an index row without its blob. Resolves to the
 * number of instances deleted, or undefined when the caller sees none there
 * (which the adapter answers as not found, hidden or absent alike).
 */
export async function deleteFromArchive(ctx: ArchiveContext, caller: Caller, t: Target): Promise<number | undefined> {
  authorise(caller, 'delete');
  if (!(await findInstances(ctx.db, caller, t)).length) return undefined;
  const keys = await deleteInstances(ctx.db, caller, {
    study_uid: t.studyUid,
    ...(t.seriesUid ? { series_uid: t.seriesUid } : {}),
    ...(t.sopInstanceUid ? { sop_instance_uid: t.sopInstanceUid } : {}),
  });
  for (const key of keys) await discardBlob(ctx, key);
  for (const key of keys)
    await dropThumbnails(ctx.blobs, key).catch((err) => ctx.log({ msg: 'cached thumbnails could not be deleted', key, error: String(err) }));
  return keys.length;
}

/**
 * Replaces the sensitivity labels of a study or series, whether or not the
 * caller is cleared for it (labelling must reach what it hides). Resolves to
 * the labels before and after, or undefined when there is no such study or
 * series.
 */
export async function relabel(
  ctx: Pick<ArchiveContext, 'db'>,
  caller: Caller,
  t: LabelTarget,
  labels: readonly string[],
): Promise<{ before: string[]; after: string[] } | undefined> {
  authorise(caller, 'label');
  caller.touched.note({ studyUid: t.studyUid, seriesUid: t.seriesUid });
  const before = await replaceLabels(ctx.db, t, labels);
  if (!before) return undefined;
  return { before, after: [...new Set(labels)].sort() };
}

/**
 * Removes blobs that no index row points at and that are older than the
 * grace period. With `recentHours`, only the hour folders of that many recent
 * hours are looked at: a crash leaves its orphans where it was writing, and
 * the sweep at start and every hour must not walk (and stat) every blob of a
 * large archive. `npm run storage:gc` walks them all.
 */
export async function sweepOrphans(db: Db, blobs: BlobStore, graceSeconds: number, recentHours?: number): Promise<number> {
  const cutoff = Date.now() - graceSeconds * 1000;
  let removed = 0;
  let batch: string[] = [];
  const flush = async () => {
    const known = await indexedBlobKeys(db, batch);
    for (const k of batch) {
      if (!known.has(k)) {
        await blobs.delete(k);
        removed++;
      }
    }
    batch = [];
  };
  for (const prefix of recentHours === undefined ? ['instances/'] : recentInstancePrefixes(recentHours)) {
    for await (const b of blobs.list(prefix)) {
      if (b.modified.getTime() < cutoff) batch.push(b.key);
      if (batch.length >= 500) await flush();
    }
  }
  await flush();
  return removed;
}

/**
 * The reject shortcut (IHE IOCM, as other archives offer it): Cairn writes a
 * rejection note titled `code` (CID 7010) that lists the instances under the
 * target the caller may see, and stores it through storeInstance(), the path
 * of a note sent by STOW-RS or C-STORE. Undefined when the caller sees no
 * instance there (the adapter answers not found, hidden or absent alike).
 */
export async function rejectTarget(ctx: ArchiveContext, caller: Caller, t: Target, code: string): Promise<StoreOutcome | undefined> {
  authorise(caller, 'store');
  const found = await findInstances(ctx.db, caller, t);
  if (!found.length) return undefined;
  const [first] = found;
  const [attrs] = await findMetadata(ctx.db, caller, { studyUid: first.studyUid, seriesUid: first.seriesUid, sopInstanceUid: first.sopInstanceUid });
  const note = buildRejectionNote(t.studyUid, code, found, JSON.parse(attrs ?? '{}') as DicomJson);
  return storeInstance(ctx, caller, Readable.from([note.bytes]), t.studyUid);
}

/**
 * Undoes the rejection of what lies under a study, series or instance (an
 * admin's correction): the rejected instances the caller may see by their
 * labels are live again, with change rows of kind `restored`, and the UIDs
 * rejected there are accepted again. Resolves to the instances restored.
 */
export async function undoRejection(ctx: Pick<ArchiveContext, 'db'>, caller: Caller, t: Target) {
  authorise(caller, 'delete');
  return restoreInstances(ctx.db, caller, {
    study_uid: t.studyUid,
    ...(t.seriesUid ? { series_uid: t.seriesUid } : {}),
    ...(t.sopInstanceUid ? { sop_instance_uid: t.sopInstanceUid } : {}),
  });
}

/** How many rejected instances a purge deletes per batch. */
const PURGE_BATCH = 200;

/**
 * Deletes for good every instance rejected more than `retentionDays` ago
 * (IHE IOCM; REJECTION_RETENTION_DAYS), whoever may see it: the blobs first,
 * then the index rows with their `deleted` change rows, so that data whose
 * retention ended does not outlive its deletion in the store. An instance
 * whose blob could not be deleted stays for the next purge. One purge at a
 * time across replicas (an advisory lock): resolves to undefined when one is
 * running elsewhere, else to the instances deleted.
 */
export async function purgeRejected(ctx: ArchiveContext, caller: Caller, retentionDays: number, now = new Date()): Promise<number | undefined> {
  authorise(caller, 'delete');
  const before = new Date(now.getTime() - retentionDays * 86_400_000);
  return withPurgeLock(ctx.db, async () => {
    let purged = 0;
    for (;;) {
      const batch = await rejectedBefore(ctx.db, before, PURGE_BATCH);
      const gone: string[] = [];
      for (const b of batch) {
        try {
          await ctx.blobs.delete(b.blobKey);
          gone.push(b.sopInstanceUid);
        } catch (err) {
          ctx.log({ msg: 'blob of a rejected instance could not be deleted; the next purge tries again', key: b.blobKey, error: String(err) });
        }
        await dropThumbnails(ctx.blobs, b.blobKey).catch((err) =>
          ctx.log({ msg: 'cached thumbnails could not be deleted', key: b.blobKey, error: String(err) }),
        );
      }
      const deleted = await deleteRejected(ctx.db, gone);
      caller.touched.noteAll(deleted);
      purged += deleted.length;
      if (batch.length < PURGE_BATCH || gone.length < batch.length) return purged;
    }
  });
}
