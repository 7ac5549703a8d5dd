import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestArchive, multipartBody, type TestArchive } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';

// The server's own purge of rejected data (server/main.ts): a Cairn started
// with REJECTION_RETENTION_DAYS=0 deletes what was rejected before it started,
// blobs and index rows, and audits it as the command rejection-purge.

let a: TestArchive;
let proc: ChildProcess | undefined;
beforeAll(async () => {
  a = await createTestArchive();
});
afterAll(async () => {
  if (proc && proc.exitCode === null) {
    const exited = new Promise((resolve) => proc!.once('exit', resolve));
    proc.kill('SIGTERM');
    await exited;
  }
  await a?.close();
});

function start(env: Record<string, string>): Promise<void> {
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
  proc = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
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
  let output = '';
  proc.stderr!.on('data', (d) => (output += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Cairn did not start: ${output}`)), 60_000);
    proc!.once('exit', (code) => reject(new Error(`Cairn exited with ${code}: ${output}`)));
    readline.createInterface({ input: proc!.stdout! }).on('line', (line) => {
      if (JSON.parse(line).msg === 'listening') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

describe('the scheduled purge of rejected data', () => {
  it('deletes at start what was rejected longer ago than REJECTION_RETENTION_DAYS, and audits it', async () => {
    const x = syntheticInstance();
    const live = syntheticInstance({ studyUid: x.studyUid });
    const { body, contentType } = multipartBody([x.bytes, live.bytes]);
    expect((await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body)).status).toBe(200);
    expect((await a.request.post(`/dicom-web/studies/${x.studyUid}/series/${x.seriesUid}/reject/113039^DCM`)).status).toBe(200);
    const { blob_key: key } = await a.deps.db('instances').where({ sop_instance_uid: x.sopInstanceUid }).first('blob_key');
    await start({ REJECTION_RETENTION_DAYS: '0' });
    const deadline = Date.now() + 30_000;
    while ((await a.deps.db('instances').where({ sop_instance_uid: x.sopInstanceUid })).length && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 200));
    expect(await a.deps.db('instances').where({ sop_instance_uid: x.sopInstanceUid })).toHaveLength(0);
    await expect(a.deps.blobs.read(key, 1)).rejects.toThrow();
    expect(await a.deps.db('instances').where({ sop_instance_uid: live.sopInstanceUid })).toHaveLength(1);
    let audit: { sub: string; protocol: string; detail: Record<string, unknown> } | undefined;
    while (!audit && Date.now() < deadline) {
      audit = await a.deps.db('audit_events').where({ action: 'rejection-purge' }).whereRaw('? = any(instance_uids)', [x.sopInstanceUid]).first();
      if (!audit) await new Promise((r) => setTimeout(r, 200));
    }
    expect(audit).toMatchObject({ sub: 'cairn', protocol: 'cli', detail: { purged: 1, retentionDays: 0, command: 'rejection-purge' } });
  }, 90_000);
});
