import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../server/app.js';
import { isBlobMissing } from '../../server/blob/blob-store.js';
import { createS3BlobStore, type S3Settings } from '../../server/blob/s3.js';
import { StorageUnavailableError } from '../../server/errors.js';
import supertest from 'supertest';
import { startS3rver, type TestS3 } from '../s3-setup.js';
import { ADMIN, createTestArchive, multipartBody, type TestArchive } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';

// S3-specific behaviour; the rest of the suite already runs over S3 in the s3 project.
const s3 = inject('s3');

function settings(s: TestS3, bucket: string): S3Settings {
  return { ...s, useSSL: false, bucket, region: 'us-east-1', pathStyle: true };
}

async function collect(r: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of r) out.push(c);
  return Buffer.concat(out);
}

function chunked(buf: Buffer, size: number): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
    })(),
  );
}

describe.runIf(s3)('S3 blob store', () => {
  const store = () => createS3BlobStore(settings(s3!, `u-${Math.random().toString(36).slice(2)}`), { partSize: 1024 * 1024 });

  it('puts a blob larger than a part as a multipart upload and reads it back whole and by range', async () => {
    const b = store();
    await b.ensureBucket();
    const bytes = Buffer.alloc(3.5 * 1024 * 1024);
    for (let i = 0; i < bytes.length; i += 4) bytes.writeUInt32LE(i, i);
    const { size } = await b.put('instances/a/big.dcm', chunked(bytes, 64 * 1024));
    expect(size).toBe(bytes.length);
    expect(Buffer.compare(await collect(await b.get('instances/a/big.dcm')), bytes)).toBe(0);
    const range = { start: 1024 * 1024 - 3, end: 2 * 1024 * 1024 + 5 };
    expect(Buffer.compare(await collect(await b.get('instances/a/big.dcm', range)), bytes.subarray(range.start, range.end + 1))).toBe(0);
    expect(Buffer.compare(await b.read('instances/a/big.dcm', bytes.length), bytes)).toBe(0);
    const listed = [];
    for await (const x of b.list('instances/')) listed.push(x);
    expect(listed.map((x) => [x.key, x.size])).toEqual([['instances/a/big.dcm', bytes.length]]);
  });

  it('leaves nothing under the key when the stream fails halfway through a multipart upload', async () => {
    const b = store();
    await b.ensureBucket();
    const body = Readable.from(
      (async function* () {
        yield Buffer.alloc(1024 * 1024 + 10, 1);
        yield Buffer.alloc(1024 * 1024 + 10, 2);
        throw new Error('client went away');
      })(),
    );
    await expect(b.put('instances/a/broken.dcm', body)).rejects.toThrow('client went away');
    const err = await b.get('instances/a/broken.dcm').catch((e) => e);
    expect(isBlobMissing(err)).toBe(true);
  });

  it('reports a missing key as missing (ENOENT), and deleting one succeeds', async () => {
    const b = store();
    await b.ensureBucket();
    expect(isBlobMissing(await b.read('instances/none.dcm', 10).catch((e) => e))).toBe(true);
    await b.delete('instances/none.dcm');
  });

  it('stores the archive instances in the bucket, not on disk', async () => {
    const a = await createTestArchive();
    try {
      const inst = syntheticInstance();
      const m = multipartBody([inst.bytes]);
      expect((await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
      const row = await a.deps.db('instances').first('blob_key', 'size');
      expect(Buffer.compare(await a.deps.blobs.read(row.blob_key, row.size), inst.bytes)).toBe(0);
      expect(fs.existsSync(a.blobDir) ? fs.readdirSync(a.blobDir) : []).toEqual([]);
    } finally {
      await a.close();
    }
  });
});

describe.runIf(s3)('S3 outage', () => {
  let dir: string;
  let server: Awaited<ReturnType<typeof startS3rver>>;
  let a: TestArchive;
  let request: ReturnType<typeof supertest.agent>;
  let port: number;

  const restart = async () => {
    const S3rver = (await import('s3rver')).default;
    const s = new S3rver({ address: '127.0.0.1', port, silent: true, directory: dir });
    await s.run();
    server = { s3: server.s3, stop: () => s.close() };
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-test-s3-outage-'));
    server = await startS3rver(dir);
    port = server.s3.port;
    a = await createTestArchive();
    const blobs = createS3BlobStore(settings(server.s3, 'outage'), { retries: 3, baseDelayMs: 20, timeoutMs: 2000 });
    await blobs.ensureBucket();
    const deps = { ...a.deps, blobs };
    request = supertest.agent(createApp(deps).callback()).set('Authorization', `Bearer ${a.token(ADMIN)}`);
  });
  afterAll(async () => {
    await server?.stop().catch(() => undefined);
    await a?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const stow = (bytes: Buffer[]) => {
    const m = multipartBody(bytes);
    return request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body);
  };

  it('answers 503 to STOW, retrieve and frames while S3 is down, indexes nothing, and recovers when it is back', async () => {
    const kept = syntheticInstance({ frames: 2 });
    expect((await stow([kept.bytes])).status).toBe(200);
    await server.stop();

    const lost = syntheticInstance();
    const res = await stow([lost.bytes, syntheticInstance().bytes]);
    expect(res.status).toBe(503);
    expect(res.body.error).toBe('StorageUnavailable');
    expect(res.headers['retry-after']).toBeDefined();
    expect(await a.deps.db('instances').count({ n: '*' }).first()).toEqual({ n: 1 });

    const base = `/dicom-web/studies/${kept.studyUid}/series/${kept.seriesUid}/instances/${kept.sopInstanceUid}`;
    const study = await request.get(`/dicom-web/studies/${kept.studyUid}`);
    expect(study.status).toBe(503);
    expect(study.body.error).toBe('StorageUnavailable');
    expect((await request.get(`${base}/frames/1`)).status).toBe(503);
    // Metadata comes from the index and needs no blob.
    expect((await request.get(`${base}/metadata`)).status).toBe(200);
    const ready = await request.get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.error).toBe('NotReady');
    expect((await request.get('/healthz')).status).toBe(200);

    await restart();
    expect((await request.get('/readyz')).status).toBe(200);
    expect((await request.get(`${base}/frames/2`)).status).toBe(200);
    expect((await stow([lost.bytes])).status).toBe(200);
    expect(await a.deps.db('instances').count({ n: '*' }).first()).toEqual({ n: 2 });
  });

  it('retries a request until S3 answers again within the backoff', async () => {
    const blobs = createS3BlobStore(settings(server.s3, 'outage'), { retries: 6, baseDelayMs: 50 });
    await blobs.put('instances/retry.dcm', Readable.from([Buffer.from('abc')]));
    await server.stop();
    const reading = blobs.read('instances/retry.dcm', 3);
    await new Promise((r) => setTimeout(r, 150));
    await restart();
    expect((await reading).toString()).toBe('abc');
  });

  it('gives up with StorageUnavailableError once the retries are spent', async () => {
    const blobs = createS3BlobStore(settings(server.s3, 'outage'), { retries: 2, baseDelayMs: 10 });
    await server.stop();
    try {
      await expect(blobs.put('instances/x.dcm', Readable.from([Buffer.from('x')]))).rejects.toBeInstanceOf(StorageUnavailableError);
      await expect(blobs.ping()).rejects.toBeInstanceOf(StorageUnavailableError);
    } finally {
      await restart();
    }
  });

  it('counts an S3 service that accepts connections but never answers as unavailable, after its timeout', async () => {
    const held: net.Socket[] = [];
    const silent = net.createServer((sock) => held.push(sock));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const blobs = createS3BlobStore(settings({ ...server.s3, port: (silent.address() as net.AddressInfo).port }, 'outage'), {
      retries: 1,
      baseDelayMs: 10,
      timeoutMs: 200,
    });
    try {
      const started = Date.now();
      const err = await blobs.read('instances/x.dcm', 1).catch((e) => e);
      expect(err).toBeInstanceOf(StorageUnavailableError);
      expect(err.message).toMatch(/no response within 200 ms/);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      for (const s of held) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('answers 202 when S3 went down after some instances of a request were stored, listing the rest as failed', async () => {
    const app = createApp({ ...a.deps, blobs: createS3BlobStore(settings(server.s3, 'outage'), { retries: 1, baseDelayMs: 10 }) });
    const listener = app.listen(0, '127.0.0.1');
    await new Promise((r) => listener.once('listening', r));
    try {
      const [first, second] = [syntheticInstance(), syntheticInstance()];
      const m = multipartBody([first.bytes, second.bytes]);
      // Up to the second part's headers: the first part is then known to be complete.
      const cut = m.body.indexOf('\r\n\r\n', m.body.indexOf(Buffer.from(`--${m.boundary}`), first.bytes.length)) + 4;
      const res = new Promise<{ status: number; body: Record<string, { Value: Record<string, { Value: unknown[] }>[] }> }>((resolve, reject) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port: (listener.address() as net.AddressInfo).port,
            method: 'POST',
            path: '/dicom-web/studies',
            headers: { 'Content-Type': m.contentType, Authorization: `Bearer ${a.token(ADMIN)}` },
          },
          (r) => {
            let text = '';
            r.on('data', (d) => (text += d));
            r.on('end', () => resolve({ status: r.statusCode!, body: JSON.parse(text) }));
          },
        );
        req.on('error', reject);
        req.write(m.body.subarray(0, cut));
        // The first instance is stored and indexed before S3 goes away and the rest is sent.
        void (async () => {
          while (!(await a.deps.db('instances').where({ sop_instance_uid: first.sopInstanceUid }).first())) await new Promise((r) => setTimeout(r, 20));
          await server.stop();
          req.end(m.body.subarray(cut));
        })().catch(reject);
      });
      const { status, body } = await res;
      expect(status).toBe(202);
      expect(body['00081199'].Value.map((x) => x['00081155'].Value[0])).toEqual([first.sopInstanceUid]);
      expect(body['00081198'].Value.map((x) => [x['00081155'].Value[0], x['00081197'].Value[0]])).toEqual([[second.sopInstanceUid, 0xa700]]);
      expect(await a.deps.db('instances').where({ sop_instance_uid: second.sopInstanceUid }).first()).toBeUndefined();
    } finally {
      await new Promise((r) => listener.close(r));
      await restart();
    }
  });
});
