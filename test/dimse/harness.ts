import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DimseConfig } from '../../server/config.js';
import { parseAes } from '../../server/dimse/aes.js';
import { startDimse, type DimseListener } from '../../server/dimse/listener.js';
import { freePort } from '../global-setup.js';
import { createTestArchive, type ArchiveOverrides, type TestArchive } from '../helpers.js';

/** A test archive with its DIMSE listener on loopback, the AEs given registered as DIMSE_AES would (or, with aesSource 'database', its `aes` table). */
export async function dimseArchive(
  aes: unknown[],
  overrides: ArchiveOverrides = {},
  dimseOverrides: Partial<DimseConfig> = {},
): Promise<TestArchive & { dimse: DimseListener; port: number }> {
  const archive = await createTestArchive(overrides);
  const config = Object.freeze({
    ...archive.deps.config,
    dimse: {
      ...archive.deps.config.dimse,
      port: 0,
      host: '127.0.0.1',
      registry: parseAes(JSON.stringify(aes)),
      aesSource: 'configuration' as const,
      ...dimseOverrides,
    },
  });
  archive.deps.config = config;
  const dimse = await startDimse(archive.deps);
  const close = archive.close;
  return {
    ...archive,
    dimse,
    port: dimse.port,
    async close() {
      await dimse.close(1000);
      await close();
    },
  };
}

/** Runs a DCMTK tool; resolves with its exit code and output whatever the code. */
export function dcmtk(tool: string, args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(tool, args, { timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code as number) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A C-MOVE destination: DCMTK's storescp on a free loopback port. */
export interface Storescp {
  title: string;
  port: number;
  /** The folder it writes what it receives into, one per destination. */
  dir: string;
  stop(): void;
}

/** Starts storescp as `title`, accepting every syntax it knows (+xa); resolves once it answers C-ECHO. */
export async function startStorescp(title: string): Promise<Storescp> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cairn-${title.toLowerCase()}-dest-`));
  const proc = spawn('storescp', ['-aet', title, '+xa', '-od', dir, String(port)], { stdio: 'ignore' });
  for (let i = 0; i < 50 && (await dcmtk('echoscu', ['-aec', title, '127.0.0.1', String(port)])).code !== 0; i++) await new Promise((r) => setTimeout(r, 100));
  return { title, port, dir, stop: () => proc.kill() };
}
