// Starting the server under test (Cairn as a child process) and the yardstick server.
import http from 'node:http';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { DICOM_MULTIPART, request } from './client.js';
import { buildServer, DIST_MAIN, ROOT } from '../server/build.mjs';

const READY_PROBE_UID = '1.2.3';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Cairn {
  base: string;
  pid: number;
  dataDir: string;
  stop(): Promise<void>;
  log(): string;
  /** A bearer token for an administrator of this Cairn (access control stays on while measured). */
  token: string;
  /** undefined while running, else the exit code (null when killed by a signal). */
  exitCode(): number | null | undefined;
  /** Its environment (DATA_DIR, EMBEDDED_PG_PORT, …), for operator commands run against it. */
  env: NodeJS.ProcessEnv;
  /** The port of its DIMSE listener (AE title CAIRN), when started with one. */
  dimsePort?: number;
  /** Its PostgreSQL: DATABASE_URL when set, else the embedded server it starts (server/db/embedded-pg.ts: user postgres, database cairn). */
  dbUrl: string;
}

/**
 * Builds Cairn and spawns it as `npm start` runs it (`node dist/server/main.js`)
 * on a free port with a fresh DATA_DIR, and waits until it answers.
 */
export async function startCairn(timeoutMs = 60_000, opts: { dimseAe?: string; dataDir?: string } = {}): Promise<Cairn> {
  const port = await freePort();
  const pgPort = await freePort();
  // With a DIMSE listener on loopback for the C-STORE phase, the calling AE registered as an uploader.
  const dimsePort = opts.dimseAe ? await freePort() : undefined;
  const dimse: NodeJS.ProcessEnv = opts.dimseAe
    ? { DIMSE_PORT: String(dimsePort), DIMSE_HOST: '127.0.0.1', DIMSE_AES: JSON.stringify([{ title: opts.dimseAe, host: '127.0.0.1', roles: ['uploader'] }]) }
    : {};
  // A given data folder (an archive kept from an earlier run, BENCH_KEEP_DATA) is used as it is and kept.
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(tmpdir(), 'cairn-bench-'));
  // mkdtemp makes a 0700 directory; when run as root the embedded postgres runs initdb as
  // a separate "postgres" user, which must be able to traverse DATA_DIR.
  chmodSync(dataDir, 0o755);
  const secret = randomBytes(32).toString('hex');
  const token = jwt.sign({ roles: ['admin'], clearances: [] }, secret, {
    algorithm: 'HS256',
    expiresIn: '12h',
    issuer: 'cairn',
    audience: 'cairn',
    subject: 'bench',
  });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    AUTH_JWT_SECRET: secret,
    AUTH: 'on',
    EMBEDDED_PG_PORT: process.env.EMBEDDED_PG_PORT ?? String(pgPort),
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    ...dimse,
  };
  await buildServer();
  const child: ChildProcess = spawn(process.execPath, [DIST_MAIN], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (c: Buffer): void => {
    out = (out + c.toString('utf8')).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: number | null | undefined;
  child.on('exit', (code, signal) => {
    exited = code;
    if (signal) out += `\n[exited on ${signal}]`;
  });
  // If the bench dies mid-run, still ask Cairn (and so its embedded postgres) to shut down.
  process.on('exit', () => {
    if (exited === undefined) child.kill('SIGTERM');
  });
  const base = `http://127.0.0.1:${port}/dicom-web`;
  const dbUrl = env.DATABASE_URL || `postgres://postgres:cairn-embedded@127.0.0.1:${env.EMBEDDED_PG_PORT}/cairn`;
  const stop = async (): Promise<void> => {
    if (exited === undefined) {
      child.kill('SIGTERM');
      for (let i = 0; i < 100 && exited === undefined; i++) await sleep(100);
      if (exited === undefined) child.kill('SIGKILL');
    }
    if (!process.env.BENCH_KEEP_DATA && !opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  const t0 = Date.now();
  let last = 'no answer';
  while (Date.now() - t0 < timeoutMs) {
    if (exited !== undefined) {
      await stop();
      throw new Error(`Cairn exited early (code ${exited}):\n${out}`);
    }
    try {
      // Ready once a WADO-RS lookup of a study that cannot exist is answered (404 from the index).
      // This does not depend on QIDO-RS, so a server whose search is still a 501 stub can be measured.
      const r = await request(
        'GET',
        `${base}/studies/${READY_PROBE_UID}`,
        { Accept: DICOM_MULTIPART, Authorization: `Bearer ${token}` },
        undefined,
        false,
        2000,
      );
      if (r.status === 404 || r.status === 200)
        return { base, pid: child.pid ?? 0, dataDir, stop, log: () => out, exitCode: () => exited, token, env, dimsePort, dbUrl };
      last = `HTTP ${r.status}`;
    } catch {
      /* not listening yet */
    }
    await sleep(250);
  }
  await stop();
  throw new Error(`Cairn did not answer 404 on ${base}/studies/${READY_PROBE_UID} within ${timeoutMs} ms (last: ${last}):\n${out}`);
}

export interface Yardstick {
  url: string;
  seriesUrl: string;
  close(): Promise<void>;
}

/**
 * The yardstick: a trivial node:http server that answers GET /instance with the
 * multipart/related body a WADO-RS retrieve of `instance` returns, and GET /series with
 * the same instance bytes repeated `seriesSize` times in one multipart body.
 */
export async function startYardstick(instance: Uint8Array, seriesSize: number): Promise<Yardstick> {
  const boundary = 'yardstick0123456789';
  const part = [Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), instance, Buffer.from('\r\n')];
  const end = Buffer.from(`--${boundary}--\r\n`);
  const one = Buffer.concat([...part, end]);
  const many = Buffer.concat([...Array.from({ length: seriesSize }, () => part).flat(), end]);
  const server = http.createServer((req, res) => {
    req.resume();
    const body = req.url === '/series' ? many : one;
    res.writeHead(200, {
      'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
      'Content-Length': body.length,
    });
    res.end(body);
  });
  server.keepAliveTimeout = 30_000;
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${port}/instance`,
    seriesUrl: `http://127.0.0.1:${port}/series`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/**
 * A do-nothing node:http server in a process of its own, answering every
 * request with `[]`: the latency of one request between two processes on
 * this machine, below which no server's figures can go.
 */
export async function startFloorServer(): Promise<{ url: string; close(): void }> {
  const port = await freePort();
  const code = `require('node:http').createServer((q, r) => { q.resume(); r.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': 2 }); r.end('[]') }).listen(${port}, '127.0.0.1')`;
  const child = spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}/`;
  for (let i = 0; i < 100; i++) {
    try {
      await request('GET', url, {}, undefined, false, 1000);
      return { url, close: () => child.kill() };
    } catch {
      await sleep(50);
    }
  }
  child.kill();
  throw new Error('the floor server did not start');
}
