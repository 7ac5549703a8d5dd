// C-STORE throughput: DCMTK's storescu, as a modality or a PACS migration
// would send, of a folder of the same synthetic instances as STOW's into a
// server's DICOM port. `associations` storescu processes run at once, each
// over its own share of the files on one association.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { batches, newPatient, newStudy } from './data.js';

export const STORESCU = '/usr/bin/storescu';
/** The calling AE title storescu uses; Cairn's bench registry lets it store. */
export const BENCH_AE = 'BENCH';

export interface CStoreTarget {
  host: string;
  port: number;
  calledAe: string;
}

export interface CStoreResult {
  status: 'ok' | 'failed';
  instances: number;
  failed: number;
  bytes: number;
  associations: number;
  /** From starting the storescu processes to the last one's exit (its start-up and reading the files included). */
  seconds: number;
  instancesPerSec: number | null;
  mbPerSec: number | null;
  error?: string;
}

export function storescuInstalled(): boolean {
  return existsSync(STORESCU);
}

/**
 * Writes `n` instances (`rows`×`rows` 16-bit CT, studies of 4 series of
 * `seriesSize`) into `parts` sub-folders of a new folder, one share per
 * association, and returns the folder.
 */
export function writeCStoreFiles(n: number, rows: number, seriesSize: number, parts: number): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-bench-cstore-'));
  for (let p = 0; p < parts; p++) mkdirSync(path.join(dir, String(p)));
  const studies = (function* () {
    for (;;) yield newStudy(newPatient(), [seriesSize, seriesSize, seriesSize, seriesSize]);
  })();
  let i = 0;
  for (const b of batches(studies, 10, rows, n)) {
    for (const f of b.files) {
      writeFileSync(path.join(dir, String(i % parts), `IM${String(i).padStart(6, '0')}.dcm`), f);
      i++;
    }
  }
  return dir;
}

/** The files of a folder written by writeCStoreFiles, by sub-folder. */
function shares(dir: string): { folders: string[]; files: number; bytes: number } {
  const folders = readdirSync(dir)
    .map((d) => path.join(dir, d))
    .filter((d) => statSync(d).isDirectory());
  let files = 0;
  let bytes = 0;
  for (const d of folders)
    for (const f of readdirSync(d)) {
      files++;
      bytes += statSync(path.join(d, f)).size;
    }
  return { folders, files, bytes };
}

function storescu(target: CStoreTarget, folder: string): Promise<{ code: number | null; succeeded: number; tail: string }> {
  return new Promise((resolve) => {
    const child = spawn(STORESCU, ['-v', '-aet', BENCH_AE, '-aec', target.calledAe, '+sd', '+r', target.host, String(target.port), folder], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let succeeded = 0;
    let tail = '';
    let partial = '';
    const read = (c: Buffer): void => {
      const text = partial + c.toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) {
        if (l.includes('Received Store Response (Success)')) succeeded++;
        else if (!l.startsWith('XMIT')) tail = `${tail}${l}\n`.slice(-2000);
      }
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.on('error', (err) => resolve({ code: -1, succeeded, tail: String(err) }));
    child.on('exit', (code) => resolve({ code, succeeded, tail }));
  });
}

/** storescu of every file in `dir` (one process per sub-folder, all at once) into `target`. */
export async function cstorePhase(target: CStoreTarget, dir: string): Promise<CStoreResult> {
  const { folders, files, bytes } = shares(dir);
  const t0 = performance.now();
  const runs = await Promise.all(folders.map((f) => storescu(target, f)));
  const ms = performance.now() - t0;
  const instances = runs.reduce((n, r) => n + r.succeeded, 0);
  const bad = runs.find((r) => r.code !== 0 || instances < files);
  const ok = instances === files && files > 0 && runs.every((r) => r.code === 0);
  const perSec = (v: number): number => Math.round((v / (ms / 1000)) * 10) / 10;
  return {
    status: ok ? 'ok' : 'failed',
    instances,
    failed: files - instances,
    bytes,
    associations: folders.length,
    seconds: Math.round(ms / 100) / 10,
    instancesPerSec: instances ? perSec(instances) : null,
    mbPerSec: instances ? perSec(bytes / 1e6) : null,
    ...(ok ? {} : { error: `storescu exit ${bad?.code}: ${bad?.tail.slice(-600) ?? ''}` }),
  };
}
