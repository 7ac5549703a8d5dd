import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline, Transform, Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../server/app.js';
import type { BlobStore } from '../../server/blob/blob-store.js';
import { createTestArchive, multipartBody, type TestArchive } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';
import { contentItem, nestedContent, newUids, part10 } from '../dicom/build.js';

// Hostile STOW-RS requests: an instance nested thousands deep, and requests
// of many tiny parts. Each costs work in proportion to its bytes, fails
// alone, and leaves the server serving others.

const logLines: string[] = [];
const sink = new Writable({
  write(chunk, _enc, cb) {
    logLines.push(chunk.toString());
    cb();
  },
});

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive({ log: pino({ level: 'info' }, sink), maxStowParts: 3 });
});
afterAll(async () => {
  await a?.close();
});

function stow(parts: Buffer[]) {
  const m = multipartBody(parts);
  return a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body);
}

async function blobCount(): Promise<number> {
  let n = 0;
  for await (const _ of a.deps.blobs.list('instances/')) n++;
  return n;
}

const failures = (body: Record<string, { Value?: Record<string, { Value?: unknown[] }>[] }>) =>
  (body['00081198']?.Value ?? []).map((f) => ({ uid: f['00081155'].Value?.[0], reason: f['00081197'].Value?.[0] }));

describe('STOW-RS of an instance nested 10,000 deep', () => {
  it('fails that instance alone with 0xC000, naming MAX_SEQUENCE_DEPTH, and stores the others', async () => {
    const hostile = part10(newUids(), { after: [nestedContent(10_000)] });
    expect(hostile.length).toBeGreaterThan(300_000);
    const good = syntheticInstance();
    const res = await stow([hostile, good.bytes]);
    expect(res.status).toBe(202);
    expect(failures(res.body)).toEqual([{ uid: undefined, reason: 0xc000 }]);
    expect(res.body['00081199'].Value[0]['00081155'].Value).toEqual([good.sopInstanceUid]);
    const line = logLines.map((l) => JSON.parse(l)).find((l) => l.msg === 'store failed' && l.reason === '0xC000');
    expect(line.message).toMatch(/MAX_SEQUENCE_DEPTH/);
  });

  it('serves another client while the request carrying it is still open', async () => {
    // The server reads the hostile part, fails it, and starts on the next
    // part, whose last bytes are held back: the request stays open while a
    // search from another client is asked and must be answered. The next
    // part is known by its preamble (PS3.10 §7.1 leaves its content free),
    // seen as its bytes go to the blob store.
    let reachedGood!: () => void;
    const startedGood = new Promise<void>((resolve) => (reachedGood = resolve));
    const blobs: BlobStore = {
      ...a.deps.blobs,
      put(key, body) {
        let head = Buffer.alloc(0);
        const tap = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            if (head.length < 4) {
              head = Buffer.concat([head, chunk]);
              if (head.length >= 4 && head.toString('latin1', 0, 4) === 'GOOD') reachedGood();
            }
            cb(null, chunk);
          },
        });
        return a.deps.blobs.put(
          key,
          pipeline(body, tap, () => undefined),
        );
      },
    };
    const server = http.createServer(createApp({ ...a.deps, blobs }).callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const good = syntheticInstance({ rows: 64, columns: 64 });
      const goodBytes = Buffer.from(good.bytes);
      goodBytes.write('GOOD', 0, 'latin1');
      const m = multipartBody([part10(newUids(), { after: [nestedContent(10_000)] }), goodBytes]);
      const cut = m.body.length - 2000;
      const req = http.request({
        port,
        method: 'POST',
        path: '/dicom-web/studies',
        headers: { 'Content-Type': m.contentType, Authorization: `Bearer ${a.token({ roles: ['admin'] })}` },
      });
      const stowDone = new Promise<{ status: number; body: Record<string, never> }>((resolve, reject) => {
        req.on('response', (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString()) }));
        });
        req.on('error', reject);
      });
      req.write(m.body.subarray(0, cut));
      await startedGood;

      let stowFinished = false;
      void stowDone.then(() => (stowFinished = true));
      const search = await a.request.get(`/dicom-web/studies?StudyInstanceUID=${good.studyUid}`);
      expect(search.status).toBe(200);
      expect(stowFinished).toBe(false);

      req.end(m.body.subarray(cut));
      const stored = await stowDone;
      expect(stored.status).toBe(202);
      expect(failures(stored.body)).toEqual([{ uid: undefined, reason: 0xc000 }]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('STOW-RS of a realistic SR under the nesting limit', () => {
  it('stores a content tree 16 items deep and returns it whole in metadata', async () => {
    const u = newUids('1.2.840.10008.5.1.4.1.1.88.33');
    const res = await stow([part10(u, { after: [contentItem(1, 16)] })]);
    expect(res.status).toBe(200);
    const m = (await a.request.get(`/dicom-web/studies/${u.studyUid}/series/${u.seriesUid}/instances/${u.sopInstanceUid}/metadata`)).body[0];
    let node = m;
    let levels = 1;
    while (node['0040A730']) {
      node = node['0040A730'].Value[0];
      levels++;
    }
    expect(levels).toBe(16);
    expect(node['0040A300'].Value[0]['0040A30A'].Value).toEqual([12.5]);
  });
});

describe('STOW-RS part limit (MAX_STOW_PARTS)', () => {
  it('stores the first parts, fails the rest unread as one 0xA700 with a Warning, and answers 202', async () => {
    const insts = Array.from({ length: 5 }, () => syntheticInstance());
    const before = await blobCount();
    const res = await stow(insts.map((i) => i.bytes));
    expect(res.status).toBe(202);
    expect(res.body['00081199'].Value.map((r: Record<string, { Value: string[] }>) => r['00081155'].Value[0])).toEqual(
      insts.slice(0, 3).map((i) => i.sopInstanceUid),
    );
    expect(failures(res.body)).toEqual([{ uid: undefined, reason: 0xa700 }]);
    expect(res.headers.warning).toMatch(/^299 .+: the request holds more than 3 parts \(MAX_STOW_PARTS\); the parts after part 3 were not read$/);
    expect(
      await a.deps.db('instances').whereIn(
        'sop_instance_uid',
        insts.slice(3).map((i) => i.sopInstanceUid),
      ),
    ).toHaveLength(0);
    expect(await blobCount()).toBe(before + 3);
  });

  it('answers 409 when nothing was stored, tiny parts and unread ones alike', async () => {
    const before = await blobCount();
    const res = await stow(Array.from({ length: 10_000 }, (_, i) => Buffer.alloc(i % 5, 0x41)));
    expect(res.status).toBe(409);
    expect(failures(res.body).map((f) => f.reason)).toEqual([0xc000, 0xc000, 0xc000, 0xa700]);
    expect(await blobCount()).toBe(before);
  });

  it('takes as many parts as the limit without a failure', async () => {
    const res = await stow(Array.from({ length: 3 }, () => syntheticInstance().bytes));
    expect(res.status).toBe(200);
    expect(res.headers.warning).toBeUndefined();
  });
});
