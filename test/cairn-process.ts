import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import type { TestArchive } from './helpers.js';

/** A Cairn process (server/main.ts) over a test archive's database and storage. */
export interface CairnProcess {
  proc: ChildProcess;
  /** The server's origin, `http://127.0.0.1:port`. */
  origin: string;
  /** Its DICOMweb root. */
  dicomweb: string;
  /** SIGTERM, and resolves once it has exited. */
  stop(): Promise<void>;
}

/**
 * Starts Cairn as its own process on a free loopback port, sharing the
 * archive's database and storage (S3 when the archive uses S3), auth off, as
 * one more replica behind a load balancer would run. Resolves once it logs
 * `listening`; rejects with its output if it exits or takes over 60 s.
 */
export async function startCairn(a: TestArchive, env: Record<string, string> = {}): Promise<CairnProcess> {
  const c = a.deps.config;
  const storage: Record<string, string> =
    a.storage === 's3'
      ? {
          STORAGE: 's3',
          S3_ENDPOINT: c.s3.endPoint,
          S3_PORT: String(c.s3.port),
          S3_BUCKET: c.s3.bucket,
          S3_ACCESS_KEY: c.s3.accessKey,
          S3_SECRET_KEY: c.s3.secretKey,
        }
      : { STORAGE: 'fs' };
  const proc = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: '0',
      AUTH: 'off',
      DATABASE_URL: a.dbUrl,
      DATA_DIR: c.dataDir,
      LOG_LEVEL: 'info',
      ...storage,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    await exited;
  };
  // Its log (JSON lines on stdout, a fatal error included) and stderr, for the failure message.
  let output = '';
  proc.stderr!.on('data', (d) => (output += d));
  try {
    const listening = await new Promise<{ url: string; dicomweb: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Cairn did not start: ${output}`)), 60_000);
      proc.once('exit', (code) => setTimeout(() => reject(new Error(`Cairn exited with ${code}: ${output}`)), 50));
      readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
        output += `${line}\n`;
        const entry = JSON.parse(line);
        if (entry.msg === 'listening') {
          clearTimeout(timer);
          resolve(entry);
        }
      });
    });
    return { proc, origin: listening.url, dicomweb: listening.dicomweb, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Starts `n` Cairn processes together; if one fails, the others are stopped and the failure thrown. */
export async function startReplicas(a: TestArchive, n: number, env: Record<string, string> = {}): Promise<CairnProcess[]> {
  const started = await Promise.allSettled(Array.from({ length: n }, () => startCairn(a, env)));
  const up = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(up.map((r) => r.stop()));
    throw failed.reason;
  }
  return up;
}
