import { execFile } from 'node:child_process';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectGarbage, verifyStorage } from '../server/storage-tools.js';
import { createTestArchive, multipartBody, type TestArchive } from './helpers.js';
import { syntheticInstance } from './synthetic.js';

const run = promisify(execFile);
let a: TestArchive;
let rows: { sop_instance_uid: string; blob_key: string; size: number }[];

beforeAll(async () => {
  a = await createTestArchive();
  const m = multipartBody([syntheticInstance().bytes, syntheticInstance({ frames: 3 }).bytes, syntheticInstance().bytes, syntheticInstance().bytes]);
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
  rows = await a.deps.db('instances').orderBy('sop_instance_uid').select('sop_instance_uid', 'blob_key', 'size');
});
afterAll(async () => {
  await a?.close();
});

/** The environment a storage tool needs to reach this test archive's database and blob store. */
function toolEnv(): NodeJS.ProcessEnv {
  const c = a.deps.config;
  const s3 =
    c.storage === 's3'
      ? { S3_ENDPOINT: c.s3.endPoint, S3_PORT: String(c.s3.port), S3_BUCKET: c.s3.bucket, S3_ACCESS_KEY: c.s3.accessKey, S3_SECRET_KEY: c.s3.secretKey }
      : {};
  return { PATH: process.env.PATH, DATABASE_URL: a.dbUrl, DATA_DIR: c.dataDir, STORAGE: c.storage, LOG_LEVEL: 'silent', ...s3 };
}

async function tool(script: string, args: string[] = []): Promise<{ code: number; stdout: string }> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', script, ...args], { env: toolEnv(), timeout: 60_000 });
    return { code: 0, stdout: r.stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('storage verify', () => {
  it('finds nothing wrong in an archive that is whole, in pages smaller than the archive', async () => {
    const r = await verifyStorage(a.deps.db, a.deps.blobs, { pageSize: 3 });
    expect(r.checked).toBe(4);
    expect(r.bytes).toBe(rows.reduce((n, x) => n + x.size, 0));
    expect(r.problems).toEqual([]);
  });

  it('npm run storage:verify exits 0 with a summary on a whole archive', async () => {
    const r = await tool('server/cli/storage-verify.ts');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toMatchObject({ checked: 4, problems: 0 });
  });

  it('reports a missing blob, a wrong size and a wrong checksum, and the command exits 1', async () => {
    const [missing, short, changed] = rows;
    await a.deps.blobs.delete(missing.blob_key);
    const original = await a.deps.blobs.read(short.blob_key, short.size);
    await a.deps.blobs.put(short.blob_key, Readable.from([original.subarray(0, original.length - 1)]));
    const other = await a.deps.blobs.read(changed.blob_key, changed.size);
    other[other.length - 1] ^= 0xff;
    await a.deps.blobs.put(changed.blob_key, Readable.from([other]));

    const r = await verifyStorage(a.deps.db, a.deps.blobs);
    expect(r.checked).toBe(4);
    expect(r.problems.map((p) => [p.sopInstanceUid, p.problem])).toEqual(
      expect.arrayContaining([
        [missing.sop_instance_uid, 'missing'],
        [short.sop_instance_uid, 'size'],
        [changed.sop_instance_uid, 'checksum'],
      ]),
    );
    expect(r.problems).toHaveLength(3);
    const cli = await tool('server/cli/storage-verify.ts');
    expect(cli.code, cli.stdout).toBe(1);
    expect(cli.stdout).toContain(`missing\t${missing.sop_instance_uid}`);
    expect(JSON.parse(cli.stdout.trim().split('\n').pop()!)).toMatchObject({ checked: 4, problems: 3 });
  });
});

describe('storage gc', () => {
  it('keeps recent orphans and indexed blobs, removes orphans older than the grace', async () => {
    await a.deps.blobs.put('instances/2000/01/01/00/orphan.dcm', Readable.from([Buffer.from('orphan')]));
    const cli = await tool('server/cli/storage-gc.ts', ['--grace-seconds', '3600']);
    expect(cli.code).toBe(0);
    expect(JSON.parse(cli.stdout.trim())).toMatchObject({ graceSeconds: 3600, removed: 0 });
    await new Promise((r) => setTimeout(r, 1100));
    expect(await collectGarbage(a.deps.db, a.deps.blobs, 1)).toBe(1);
    const left = [];
    for await (const b of a.deps.blobs.list('instances/')) left.push(b.key);
    // Every indexed blob but the one deleted above is still there.
    expect(left.sort()).toEqual(
      rows
        .slice(1)
        .map((r) => r.blob_key)
        .sort(),
    );
  });
});
