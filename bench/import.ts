// The bulk import's rate beside STOW's: the same kind of synthetic instances
// written to a folder, then `npm run import` (server/cli/import.ts) run over
// it against the Cairn the bench started, as an operator would.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { batches, newPatient, newStudy } from './data.js';
import { ROOT } from '../server/build.mjs';

export interface ImportResult {
  status: 'ok' | 'failed';
  instances: number;
  failed: number;
  bytes: number;
  /** The import's own time (from its summary), without starting the command. */
  seconds: number | null;
  instancesPerSec: number | null;
  mbPerSec: number | null;
  /** From starting the command to its exit (start-up, opening the index and blob store included). */
  wallSeconds: number;
  error?: string;
}

export async function importPhase(env: NodeJS.ProcessEnv, n: number, rows: number, seriesSize: number, workers: number): Promise<ImportResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-bench-import-'));
  try {
    let bytes = 0;
    let i = 0;
    const studies = (function* () {
      for (;;) yield newStudy(newPatient(), [seriesSize, seriesSize, seriesSize, seriesSize]);
    })();
    // One batch in memory at a time; a folder per 100 files, as an export might be laid out.
    for (const b of batches(studies, 10, rows, n)) {
      for (const f of b.files) {
        const sub = path.join(dir, String(Math.floor(i / 100)).padStart(4, '0'));
        if (i % 100 === 0) mkdirSync(sub);
        writeFileSync(path.join(sub, `IM${String(i).padStart(6, '0')}.dcm`), f);
        i++;
      }
      bytes += b.bytes;
    }
    const t0 = performance.now();
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'server/cli/import.ts', dir, '--workers', String(workers), '--progress-seconds', '3600'], {
        cwd: ROOT,
        env: { ...env, LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (c) => (out += c));
      child.stderr.on('data', (c) => (err = (err + c).slice(-4000)));
      child.on('exit', (c) => resolve({ code: c, stdout: out, stderr: err }));
    });
    const wallSeconds = Math.round((performance.now() - t0) / 100) / 10;
    const last = stdout.trim().split('\n').pop() ?? '';
    let s: { stored?: number; alreadyPresent?: number; failed?: number; bytes?: number; seconds?: number } = {};
    try {
      s = JSON.parse(last);
    } catch {
      /* no summary: the import did not finish */
    }
    const instances = (s.stored ?? 0) + (s.alreadyPresent ?? 0);
    const seconds = s.seconds && s.seconds > 0 ? s.seconds : null;
    const ok = code === 0 && instances === n;
    return {
      status: ok ? 'ok' : 'failed',
      instances,
      failed: s.failed ?? n - instances,
      bytes,
      seconds,
      instancesPerSec: seconds ? Math.round((instances / seconds) * 10) / 10 : null,
      mbPerSec: seconds ? Math.round(((s.bytes ?? bytes) / 1e6 / seconds) * 10) / 10 : null,
      wallSeconds,
      ...(ok ? {} : { error: `exit ${code}: ${(stdout + stderr).slice(-600)}` }),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
