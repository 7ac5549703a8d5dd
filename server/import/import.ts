import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { permits, type Caller, type Principal } from '../access.js';
import { ApiError } from '../errors.js';
import { storeInstance, type ArchiveContext } from '../archive.js';
import type { AuditDeps } from '../audit.js';
import { indexedInstance } from '../db/inventory.js';
import { FILE_META_HEAD, MEDIA_STORAGE_DIRECTORY, PART10_PREFIX, readFileMeta } from '../dicom/dicomdir.js';
import { AuditBatches } from './audit-batches.js';
import type { ImportState } from './state.js';
import { walk, type Found } from './walk.js';

// A bulk import: every Part-10 file under the given folders goes through
// the archive's one store path (storeInstance) with the import's Caller,
// so duplicates, labels at ingest and the audit trail behave as for STOW.
// N files are in flight at once, each streamed from disk (never read whole
// into memory); what is already stored is skipped without a blob write.

export interface FileReport {
  path: string;
  reason: string;
}

export interface ImportCounters {
  /** Files taken up so far (whatever their outcome) and their bytes; a problem of the walk is a failure but not a file. */
  files: number;
  bytes: number;
  stored: number;
  /** Already in the archive with the same bytes, found now or recorded by an earlier run (`resumed`). */
  present: number;
  resumed: number;
  skipped: number;
  failed: number;
  dicomdirs: number;
}

export interface ImportSummary extends ImportCounters {
  failures: FileReport[];
  skips: FileReport[];
  /** Skips beyond the ones listed (a migration may hold very many non-DICOM files). */
  skipsNotListed: number;
  /** Stopped before the end (Ctrl-C, SIGTERM). */
  interrupted: boolean;
  seconds: number;
}

export interface ImportRun {
  archive: ArchiveContext;
  audit: AuditDeps;
  principal: Principal;
  /** Added to every audit row of the import. */
  auditDetail?: Record<string, unknown>;
  roots: readonly string[];
  workers: number;
  state: ImportState;
  /** Aborting stops taking new files; the files in flight are finished. */
  signal: AbortSignal;
  /** Live counts, for the progress display. */
  counters?: ImportCounters;
}

/** How many skipped files the summary lists by name. */
const SKIPS_LISTED = 1000;

export function newCounters(): ImportCounters {
  return { files: 0, bytes: 0, stored: 0, present: 0, resumed: 0, skipped: 0, failed: 0, dicomdirs: 0 };
}

export async function runImport(run: ImportRun): Promise<ImportSummary> {
  // storeInstance checks this for every file; the check for files already
  // stored, which never reaches it, must not let a principal through either.
  if (!permits(run.principal, 'store')) throw new ApiError(403, 'Forbidden', `the roles [${run.principal.roles.join(', ')}] may not store`);
  const started = Date.now();
  const c = run.counters ?? newCounters();
  const failures: FileReport[] = [];
  const skips: FileReport[] = [];
  let skipsNotListed = 0;
  const skip = (path: string, reason: string) => {
    c.skipped++;
    if (skips.length < SKIPS_LISTED) skips.push({ path, reason });
    else skipsNotListed++;
  };
  const batches = new AuditBatches<Done>(run.audit, run.principal, 'import', { ...run.auditDetail, folders: run.roots.length }, (done) =>
    run.state.record(done),
  );
  const found = walk(run.roots);
  // An audit row that cannot be written stops the import (the trail fails closed).
  let fatal: unknown;

  const one = async (f: Found): Promise<void> => {
    if (f.kind === 'dicomdir') {
      c.dicomdirs++;
      return;
    }
    if (f.kind === 'problem') {
      c.failed++;
      failures.push({ path: f.path, reason: f.reason });
      return;
    }
    c.files++;
    c.bytes += f.size;
    if (run.state.done(f)) {
      c.present++;
      c.resumed++;
      return;
    }
    const r = await importFile(run, batches, f);
    if (r.outcome === 'skipped') skip(f.path, r.reason);
    else if (r.outcome === 'failed') {
      c.failed++;
      failures.push({ path: f.path, reason: r.reason });
    } else c[r.outcome]++;
  };

  const worker = async () => {
    while (!run.signal.aborted && fatal === undefined) {
      let next: IteratorResult<Found>;
      try {
        next = await found.next();
      } catch (err) {
        // A folder given on the command line that vanished or cannot be read.
        fatal ??= err;
        return;
      }
      if (next.done) return;
      try {
        await one(next.value);
      } catch (err) {
        fatal ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, run.workers) }, worker));
  try {
    await batches.flush();
  } catch (err) {
    fatal ??= err;
  }
  if (fatal !== undefined) throw fatal;
  const interrupted = run.signal.aborted;
  await (interrupted ? run.state.close() : run.state.finish());
  return { ...c, failures, skips, skipsNotListed, interrupted, seconds: (Date.now() - started) / 1000 };
}

/** A file in the archive, recorded in the resume state once its audit row is written. */
type Done = { path: string; size: number; mtimeMs: number };

type FileResult = { outcome: 'stored' | 'present' } | { outcome: 'skipped' | 'failed'; reason: string };

async function importFile(run: ImportRun, batches: AuditBatches<Done>, f: Done): Promise<FileResult> {
  let head: Buffer;
  try {
    head = await readHead(f.path);
  } catch (err) {
    return { outcome: 'failed', reason: `cannot be read: ${(err as Error).message}` };
  }
  const meta = readFileMeta(head);
  if (!meta) {
    return {
      outcome: 'skipped',
      reason:
        head.length < PART10_PREFIX
          ? `not a DICOM file: ${head.length} bytes, shorter than the Part-10 preamble and prefix`
          : `not a DICOM Part-10 file: no "DICM" at byte 128 (PS3.10 §7.1)`,
    };
  }
  if (meta.sopClassUid === MEDIA_STORAGE_DIRECTORY) return { outcome: 'skipped', reason: 'a DICOMDIR, not an instance (its folder is imported by walking it)' };
  const batch = batches.take();
  let result: FileResult;
  try {
    result = await storeFile(run, batch.caller, f, meta.sopInstanceUid);
  } catch (err) {
    result = { outcome: 'failed', reason: (err as Error).message };
  }
  if (result.outcome === 'stored' || result.outcome === 'present') await batches.release(batch, result.outcome, f);
  else await batches.release(batch, 'failed');
  return result;
}

async function storeFile(run: ImportRun, caller: Caller, f: { path: string; size: number }, sopInstanceUid: string | undefined): Promise<FileResult> {
  // The cheap check: an instance indexed under the file's Media Storage SOP
  // Instance UID (0002,0003) with the file's size and SHA-256 is these very
  // bytes, so there is nothing to write. Anything else (a size or checksum
  // that differs, a store racing this one) goes to storeInstance, whose
  // duplicate handling decides as it does for STOW.
  if (sopInstanceUid) {
    const row = await indexedInstance(run.archive.db, sopInstanceUid);
    if (row && row.size === f.size && (await sha256Of(f.path)) === row.sha256) {
      caller.touched.note({ studyUid: row.studyUid, seriesUid: row.seriesUid, sopInstanceUid });
      return { outcome: 'present' };
    }
  }
  const outcome = await storeInstance(run.archive, caller, fs.createReadStream(f.path, { highWaterMark: 256 * 1024 }));
  if (outcome.ok) return { outcome: outcome.duplicate ? 'present' : 'stored' };
  return { outcome: 'failed', reason: `${outcome.message} (0x${outcome.reason.toString(16).toUpperCase().padStart(4, '0')})` };
}

async function readHead(path: string): Promise<Buffer> {
  const fh = await fs.promises.open(path, 'r');
  try {
    const buf = Buffer.alloc(FILE_META_HEAD);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(path, { highWaterMark: 256 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
