import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCaller, type Caller } from '../server/access.js';
import type { BlobStore } from '../server/blob/blob-store.js';
import type { FramedInstance, StoredInstance } from '../server/db/lookup.js';
import { ApiError } from '../server/errors.js';
import { parseAccept } from '../server/http/accept.js';
import type { PartBody } from '../server/http/multipart.js';
import type { Reply } from '../server/http/reply.js';
import { retrieveBytes, SMALL_BLOB, type Asked } from '../server/retrieve.js';
import { ADMIN, testBlobStore } from './helpers.js';

// The bytes seam's decisions: what was asked × the stored transfer syntax ×
// the Accept header → the parts sent, or 406. The blob is real (a folder, or
// the run's S3 server); its bytes are a counting pattern, so each part can
// be checked to be the right slice.

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const IMPLICIT_LE = '1.2.840.10008.1.2';
const EXPLICIT_BE = '1.2.840.10008.1.2.2';
const JPEG = '1.2.840.10008.1.2.4.50';
const RLE = '1.2.840.10008.1.2.5';
const HTJ2K = '1.2.840.10008.1.2.4.201';
const PRIVATE = '1.2.3.4.5';

const BLOB = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 251));
const KEY = 'instances/test/retrieve.dcm';
// Three frames of 16 bytes at 100, 116 and 132 (native), or as fragments with 8-byte item headers between (encapsulated).
const NATIVE_FRAMES = [[{ offset: 100, length: 16 }], [{ offset: 116, length: 16 }], [{ offset: 132, length: 16 }]];
const FRAGMENTS = [
  [
    { offset: 100, length: 10 },
    { offset: 118, length: 6 },
  ],
  [{ offset: 132, length: 16 }],
];

let dir: string;
let blobs: BlobStore;
const caller: Caller = newCaller(ADMIN, { protocol: 'cli', command: 'retrieve test' });

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-retrieve-'));
  fs.chmodSync(dir, 0o755);
  ({ blobs } = await testBlobStore(path.join(dir, 'blobs')));
  await blobs.put(KEY, Readable.from([BLOB]));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const ids = { sopInstanceUid: '2.25.1', seriesUid: '2.25.2', studyUid: '2.25.3' };
function instance(ts: string, size = BLOB.length): StoredInstance {
  return { ...ids, blobKey: KEY, size, transferSyntaxUid: ts, sopClassUid: '1.2.840.10008.5.1.4.1.1.7' };
}
function framed(ts: string): FramedInstance {
  const encapsulated = ![EXPLICIT_LE, IMPLICIT_LE, EXPLICIT_BE].includes(ts);
  const frames = encapsulated ? FRAGMENTS : NATIVE_FRAMES;
  const pixelData = encapsulated ? { vr: 'OB', offset: 92, length: 56 } : { vr: 'OW', offset: 100, length: 48 };
  return {
    ...ids,
    blobKey: KEY,
    transferSyntaxUid: ts,
    frames,
    bulk: { '7FE00010': pixelData, '00420011': { vr: 'OB', offset: 20, length: 30 } },
    bitsAllocated: 8,
    samplesPerPixel: 1,
  };
}

async function bytesOf(body: PartBody): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body;
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

/** The reply's parts as [content type, bytes], and whether it is multipart. */
async function sent(reply: Reply): Promise<{ multipart: boolean; partType?: string; parts: [string, Buffer][] }> {
  const parts = reply.multipart ? reply.parts : [reply.part];
  const out: [string, Buffer][] = [];
  for (const p of parts) {
    const b = await bytesOf(await p.body());
    expect(b.length).toBe(p.length);
    out.push([p.contentType, b]);
  }
  return { multipart: reply.multipart, partType: reply.multipart ? reply.partType : undefined, parts: out };
}

async function ask(accept: string | undefined, asked: Asked) {
  return sent(await retrieveBytes({ blobs }, caller, parseAccept(accept), asked));
}

async function refusal(accept: string | undefined, asked: Asked): Promise<ApiError> {
  const err = await retrieveBytes({ blobs }, caller, parseAccept(accept), asked).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiError);
  return err as ApiError;
}

const frameBytes = (spans: { offset: number; length: number }[]) => Buffer.concat(spans.map((s) => BLOB.subarray(s.offset, s.offset + s.length)));

describe('bytes seam: instances', () => {
  const one = (ts: string): Asked => ({ kind: 'instances', rows: [instance(ts)], one: true });

  it.each([
    ['a bare application/dicom', 'application/dicom', EXPLICIT_LE, false],
    ['application/dicom with the stored syntax named', `application/dicom; transfer-syntax=${RLE}`, RLE, false],
    ['multipart application/dicom', 'multipart/related; type="application/dicom"', EXPLICIT_LE, true],
    ['multipart with transfer-syntax=*', 'multipart/related; type="application/dicom"; transfer-syntax=*', JPEG, true],
    ['no Accept header, stored lossy', undefined, JPEG, true],
    ['*/*', '*/*', PRIVATE, true],
  ])('%s: the stored bytes under application/dicom with the stored syntax', async (_, accept, ts, multipart) => {
    const r = await ask(accept, one(ts));
    expect(r.multipart).toBe(multipart);
    expect(r.parts).toEqual([[`application/dicom; transfer-syntax=${ts}`, BLOB]]);
    if (multipart) expect(r.partType).toBe('application/dicom');
  });

  it('sends every instance of a study as multipart, even for a bare application/dicom', async () => {
    const r = await ask('application/dicom', { kind: 'instances', rows: [instance(EXPLICIT_LE), instance(RLE)], one: false });
    expect(r.multipart).toBe(true);
    expect(r.parts.map(([type]) => type)).toEqual([`application/dicom; transfer-syntax=${EXPLICIT_LE}`, `application/dicom; transfer-syntax=${RLE}`]);
  });

  it('offers a small instance to be read straight into a one-part payload, a large one only as a stream', async () => {
    const small = await retrieveBytes({ blobs }, caller, parseAccept(undefined), one(EXPLICIT_LE));
    const large = await retrieveBytes({ blobs }, caller, parseAccept(undefined), {
      kind: 'instances',
      rows: [instance(EXPLICIT_LE, SMALL_BLOB + 1)],
      one: true,
    });
    expect(small.multipart && small.parts[0].fill).toBeTypeOf('function');
    expect(large.multipart && large.parts[0].fill).toBeUndefined();
  });

  it.each([
    ['another transfer syntax named', `multipart/related; type="application/dicom"; transfer-syntax=${JPEG}`, EXPLICIT_LE],
    ['a media type that is not application/dicom', 'image/x-foo', EXPLICIT_LE],
    ['frames media types for an instance', 'multipart/related; type="image/dicom-rle"', RLE],
  ])('answers 406 for %s, listing what can be sent', async (_, accept, ts) => {
    const err = await refusal(accept, one(ts));
    expect(err.status).toBe(406);
    // Explicit VR LE stored needs no decoding to be sent as Explicit VR LE; RLE needs a codec, and none is given here.
    const list = [`application/dicom; transfer-syntax=${ts}`];
    expect(err.message).toBe(`no acceptable media type for instance 2.25.1 stored as ${ts}; Cairn can send ${list.join(', ')}`);
    expect(err.details).toEqual({ acceptable: list });
  });
});

describe('bytes seam: frames', () => {
  const frames = (ts: string, numbers = [2]): Asked => ({ kind: 'frames', row: framed(ts), frames: numbers });

  it.each([
    [
      'native LE as octet-stream',
      'multipart/related; type="application/octet-stream"',
      EXPLICIT_LE,
      `application/octet-stream; transfer-syntax=${EXPLICIT_LE}`,
    ],
    [
      'Implicit VR LE labelled Explicit VR LE (the same bytes)',
      'multipart/related; type="application/octet-stream"',
      IMPLICIT_LE,
      `application/octet-stream; transfer-syntax=${EXPLICIT_LE}`,
    ],
    [
      'big endian labelled as stored, with transfer-syntax=*',
      'multipart/related; type="application/octet-stream"; transfer-syntax=*',
      EXPLICIT_BE,
      `application/octet-stream; transfer-syntax=${EXPLICIT_BE}`,
    ],
    ['RLE under image/dicom-rle', 'multipart/related; type="image/dicom-rle"', RLE, `image/dicom-rle; transfer-syntax=${RLE}`],
    [
      'RLE as octet-stream with transfer-syntax=*',
      'multipart/related; type=application/octet-stream; transfer-syntax=*',
      RLE,
      `application/octet-stream; transfer-syntax=${RLE}`,
    ],
    ['HTJ2K for image/*', 'multipart/related; type="image/*"', HTJ2K, `image/jphc; transfer-syntax=${HTJ2K}`],
    [
      'a syntax Cairn does not know, as octet-stream',
      'multipart/related; type="application/octet-stream"; transfer-syntax=*',
      PRIVATE,
      `application/octet-stream; transfer-syntax=${PRIVATE}`,
    ],
    ['JPEG with its own UID named', `multipart/related; type="image/jpeg"; transfer-syntax=${JPEG}`, JPEG, `image/jpeg; transfer-syntax=${JPEG}`],
  ])('%s', async (_, accept, ts, contentType) => {
    const row = framed(ts);
    const r = await ask(accept, { kind: 'frames', row, frames: [2] });
    expect(r.multipart).toBe(true);
    expect(r.partType).toBe(contentType.split(';')[0]);
    expect(r.parts).toEqual([[contentType, frameBytes(row.frames![1])]]);
  });

  it('sends one frame without multipart when a single part is accepted, several as multipart', async () => {
    expect((await ask('image/jpeg', frames(JPEG, [1]))).multipart).toBe(false);
    const two = await ask('image/jpeg', frames(JPEG, [2, 1]));
    expect(two.multipart).toBe(true);
    expect(two.parts.map(([, b]) => b)).toEqual([frameBytes(FRAGMENTS[1]), frameBytes(FRAGMENTS[0])]);
  });

  it('sends big-endian frames as little-endian pixels when no transfer syntax is asked for', async () => {
    const row = framed(EXPLICIT_BE);
    row.bulk['7FE00010'].vr = 'OW';
    const r = await ask('multipart/related; type="application/octet-stream"', { kind: 'frames', row, frames: [2] });
    expect(r.parts).toEqual([[`application/octet-stream; transfer-syntax=${EXPLICIT_LE}`, Buffer.from(frameBytes(row.frames![1])).swap16()]]);
  });

  // No codecs are given here: compressed frames can only be sent as stored.
  it.each([
    [
      'compressed frames asked for as uncompressed',
      'multipart/related; type="application/octet-stream"',
      RLE,
      ['image/dicom-rle', 'application/octet-stream; transfer-syntax=*'],
    ],
    ['another compressed syntax', 'multipart/related; type="image/jp2"', JPEG, ['image/jpeg', 'application/octet-stream; transfer-syntax=*']],
    ['native frames under a compressed media type', 'multipart/related; type="image/jpeg"', EXPLICIT_LE, ['application/octet-stream']],
    [
      'native frames with another syntax named',
      `multipart/related; type="application/octet-stream"; transfer-syntax=${JPEG}`,
      EXPLICIT_LE,
      ['application/octet-stream'],
    ],
  ])('answers 406 for %s, listing what can be sent', async (_, accept, ts, types) => {
    const err = await refusal(accept, frames(ts));
    expect(err.status).toBe(406);
    const list = types.map((t) => (t.includes('transfer-syntax') ? t : `${t}; transfer-syntax=${ts}`));
    expect(err.message).toBe(`no acceptable media type for frames stored as ${ts}; Cairn can send ${list.join(', ')}`);
    expect(err.details).toEqual({ acceptable: list });
  });

  it('answers 404 for a frame beyond the last before looking at the Accept', async () => {
    const err = await refusal('image/x-foo', frames(RLE, [1, 3]));
    expect([err.status, err.code]).toEqual([404, 'FrameNotFound']);
  });
});

describe('bytes seam: bulk data', () => {
  const bulk = (ts: string, tag = '7FE00010', range?: string): Asked => ({ kind: 'bulk', row: framed(ts), tag, range });

  it('sends a native value as one octet-stream body whatever is accepted', async () => {
    const r = await ask('image/x-foo', bulk(EXPLICIT_LE));
    expect(r).toEqual({ multipart: false, partType: undefined, parts: [['application/octet-stream', BLOB.subarray(100, 148)]] });
  });

  it('sends a value as multipart when only multipart is accepted', async () => {
    const r = await ask('multipart/related; type="application/octet-stream"', bulk(RLE, '00420011'));
    expect(r.multipart).toBe(true);
    expect(r.parts).toEqual([['application/octet-stream', BLOB.subarray(20, 50)]]);
  });

  it('answers a Range with 206 and Content-Range', async () => {
    const reply = await retrieveBytes({ blobs }, caller, parseAccept(undefined), bulk(EXPLICIT_LE, '7FE00010', 'bytes=4-9'));
    expect(reply.multipart === false && [reply.status, reply.headers]).toEqual([206, { 'Accept-Ranges': 'bytes', 'Content-Range': 'bytes 4-9/48' }]);
    expect((await sent(reply)).parts[0][1]).toEqual(BLOB.subarray(104, 110));
  });

  it('sends encapsulated pixel data as its frames under the media type of its syntax', async () => {
    const r = await ask(undefined, bulk(RLE));
    expect(r.multipart).toBe(true);
    expect(r.parts).toEqual(FRAGMENTS.map((f) => [`image/dicom-rle; transfer-syntax=${RLE}`, frameBytes(f)]));
  });

  it('answers 406 for encapsulated pixel data asked for as uncompressed when no codec can decode it', async () => {
    const err = await refusal('application/octet-stream', bulk(JPEG));
    expect(err.status).toBe(406);
    expect(err.message).toBe(
      `no acceptable media type for pixel data stored as ${JPEG}; Cairn can send image/jpeg; transfer-syntax=${JPEG}, application/octet-stream; transfer-syntax=*`,
    );
  });

  it('answers 416 for a range outside the value', async () => {
    expect((await refusal(undefined, bulk(EXPLICIT_LE, '7FE00010', 'bytes=48-'))).status).toBe(416);
  });
});
