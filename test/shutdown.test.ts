import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import readline from 'node:readline';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { syntheticInstance } from './synthetic.js';
import { buildServer, DIST_MAIN } from '../server/build.mjs';

// `npm start` as it runs on a fresh machine (embedded PostgreSQL, filesystem
// blobs), stopped with SIGTERM while a STOW is halfway through its body: the
// request finishes and is answered, then the database stops and the process
// exits 0. (The embedded PostgreSQL package has an exit hook of its own that
// used to stop the database and exit at once.)
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-shutdown-'));
let proc: ChildProcess | undefined;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

afterAll(() => {
  if (proc && proc.exitCode === null) proc.kill('SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe.skipIf(inject('s3'))('SIGTERM', () => {
  it('lets a STOW in flight finish, then stops the embedded PostgreSQL and exits 0', async () => {
    const env = {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      PORT: '0',
      DATA_DIR: dataDir,
      EMBEDDED_PG_PORT: String(await freePort()),
      AUTH: 'off',
      LOG_LEVEL: 'info',
    };
    // As npm start runs it: built to dist/, then plain node.
    await buildServer();
    proc = spawn(process.execPath, [DIST_MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr += d));
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Cairn did not start: ${stderr}`)), 90_000);
      readline.createInterface({ input: proc!.stdout! }).on('line', (line) => {
        const entry = JSON.parse(line);
        if (entry.msg === 'listening') {
          clearTimeout(timer);
          resolve(Number(new URL(entry.url).port));
        }
      });
    });
    const exited = new Promise<number | null>((resolve) => proc!.once('exit', (code) => resolve(code)));
    const inst = syntheticInstance({ rows: 64, columns: 64 });
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/dicom-web/studies',
          headers: { 'Content-Type': 'multipart/related; type="application/dicom"; boundary=B' },
        },
        (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.write('--B\r\nContent-Type: application/dicom\r\n\r\n');
      req.write(inst.bytes.subarray(0, 200));
      // The signal arrives while the body is still coming.
      setTimeout(() => proc!.kill('SIGTERM'), 300);
      setTimeout(() => {
        req.write(inst.bytes.subarray(200));
        req.end('\r\n--B--\r\n');
      }, 1500);
    });
    const res = await answer;
    expect(res.status, res.body).toBe(200);
    expect(res.body).toContain(inst.sopInstanceUid);
    expect(await exited).toBe(0);
    // The database stopped with the process: its pid file is gone.
    expect(fs.existsSync(path.join(dataDir, 'pg', 'postmaster.pid'))).toBe(false);
  });
});
