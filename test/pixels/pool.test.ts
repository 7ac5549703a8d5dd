import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { buildServer, ROOT } from '../../server/build.mjs';
import { EXPLICIT_VR_LE, J2K_LOSSLESS, JPEG_BASELINE, JPEG_LS_LOSSLESS, RLE_LOSSLESS } from '../../server/dicom/transfer-syntax.js';
import { createPixelCodecs } from '../../server/pixels/codecs.js';
import { PixelError, type PixelCodecs, type PixelModule } from '../../server/pixels/types.js';
import { sampleFrames } from './samples.js';

const pixels = createPixelCodecs({ workers: 1, inlineBytes: 0 });
afterAll(() => pixels.close());

async function failure(p: Promise<unknown>): Promise<PixelError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PixelError);
  return err as PixelError;
}

/** The worker still answers after a failure: a good frame decodes. */
async function stillWorks(codecs: PixelCodecs = pixels): Promise<void> {
  const rle = await sampleFrames('SC_rgb_rle_2frame.dcm');
  const d = await codecs.decode(rle.transferSyntaxUid, rle.frames[0], rle.module);
  expect([...d.pixels.subarray(0, 3)]).toEqual([255, 0, 0]);
}

describe('limits checked before anything is allocated', () => {
  const huge: PixelModule = {
    rows: 65535,
    columns: 65535,
    samplesPerPixel: 1,
    bitsAllocated: 16,
    bitsStored: 16,
    highBit: 15,
    pixelRepresentation: 0,
    photometricInterpretation: 'MONOCHROME2',
    planarConfiguration: 0,
    numberOfFrames: 1,
  };

  it('refuses a declared 65535 × 65535 frame with 422 FrameTooLarge', async () => {
    for (const uid of [EXPLICIT_VR_LE, RLE_LOSSLESS, J2K_LOSSLESS]) {
      const err = await failure(pixels.decode(uid, Buffer.alloc(16), huge));
      expect(err).toMatchObject({ status: 422, code: 'FrameTooLarge' });
    }
    const enc = await failure(pixels.encode(RLE_LOSSLESS, { module: huge, pixels: Buffer.alloc(16) }));
    expect(enc.status).toBe(422);
  });

  it('applies the configured maximum', async () => {
    const small = createPixelCodecs({ workers: 1, maxFrameBytes: 1024 * 1024 });
    const ct = await sampleFrames('CT_small.dcm');
    await small.decode(ct.transferSyntaxUid, ct.frames[0], ct.module);
    const err = await failure(small.decode(ct.transferSyntaxUid, Buffer.alloc(16), { ...ct.module, rows: 1024, columns: 1024 }));
    expect(err).toMatchObject({ status: 422, code: 'FrameTooLarge' });
    await small.close();
  });

  it('refuses modules that make no sense with 422', async () => {
    const ct = await sampleFrames('CT_small.dcm');
    for (const bad of [
      { rows: 0 },
      { samplesPerPixel: 4 },
      { bitsAllocated: 12 },
      { bitsStored: 17 },
      { photometricInterpretation: 'CMYK' },
      { columns: 1.5 },
    ]) {
      const err = await failure(pixels.decode(ct.transferSyntaxUid, ct.frames[0], { ...ct.module, ...bad }));
      expect(err, JSON.stringify(bad)).toMatchObject({ status: 422, code: 'InvalidPixelModule' });
    }
  });

  it('refuses a codestream that declares another size than its data set', async () => {
    const ct = await sampleFrames('CT_small.dcm');
    const frame = { module: ct.module, pixels: ct.frames[0] };
    const j2k = await pixels.encode(J2K_LOSSLESS, frame);
    const err = await failure(pixels.decode(J2K_LOSSLESS, j2k.bytes, { ...ct.module, rows: 64 }));
    expect(err).toMatchObject({ status: 422, code: 'CorruptPixelData' });
    expect(err.message).toMatch(/128 × 128/);
  });
});

describe('bad pixel data fails that frame alone', () => {
  it('answers 422 for truncated RLE, JPEG, JPEG-LS and JPEG 2000 frames, and the worker goes on', async () => {
    const rle = await sampleFrames('SC_rgb_rle_2frame.dcm');
    const rgb = await pixels.decode(rle.transferSyntaxUid, rle.frames[0], rle.module);
    const grey = { module: { ...rgb.module, samplesPerPixel: 1, photometricInterpretation: 'MONOCHROME2', columns: 300 }, pixels: rgb.pixels };
    const cases: [string, Buffer, PixelModule][] = [[RLE_LOSSLESS, rle.frames[0].subarray(0, rle.frames[0].length - 200), rle.module]];
    for (const uid of [JPEG_BASELINE, JPEG_LS_LOSSLESS, J2K_LOSSLESS]) {
      const enc = await pixels.encode(uid, grey);
      cases.push([uid, enc.bytes.subarray(0, Math.floor(enc.bytes.length / 2)), enc.module]);
    }
    for (const [uid, bytes, module] of cases) {
      const err = await failure(pixels.decode(uid, bytes, module));
      expect(err.status, uid).toBe(422);
      expect(err.message, uid).not.toBe('');
    }
    await stillWorks();
  });

  it('answers 422 for RLE segment offsets that lie', async () => {
    const rle = await sampleFrames('SC_rgb_rle_2frame.dcm');
    const lying = Buffer.from(rle.frames[0]);
    lying.writeUInt32LE(0x7fffffff, 8);
    const err = await failure(pixels.decode(RLE_LOSSLESS, lying, rle.module));
    expect(err).toMatchObject({ status: 422, code: 'CorruptPixelData' });
    const count = Buffer.from(rle.frames[0]);
    count.writeUInt32LE(15, 0);
    expect((await failure(pixels.decode(RLE_LOSSLESS, count, rle.module))).status).toBe(422);
    await stillWorks();
  });

  it('answers 422 for bytes that are no codestream at all', async () => {
    const ct = await sampleFrames('CT_small.dcm');
    const junk = Buffer.alloc(4096, 0x5a);
    for (const uid of [JPEG_BASELINE, '1.2.840.10008.1.2.4.70', JPEG_LS_LOSSLESS, J2K_LOSSLESS, '1.2.840.10008.1.2.4.201']) {
      const err = await failure(pixels.decode(uid, junk, ct.module));
      expect(err.status, uid).toBe(422);
    }
    await stillWorks();
  });

  it('answers 422 when a codec itself throws on damaged data inside a valid header', async () => {
    const ct = await sampleFrames('CT_small.dcm');
    const j2k = await pixels.encode(J2K_LOSSLESS, { module: ct.module, pixels: ct.frames[0] });
    const damaged = Buffer.from(j2k.bytes);
    // Keep SOC and SIZ (about 50 bytes), scramble every marker segment after them.
    for (let i = 60; i < damaged.length; i += 3) damaged[i] = 0xff;
    const err = await failure(pixels.decode(J2K_LOSSLESS, damaged, j2k.module));
    expect(err.status).toBe(422);
    await stillWorks();
  });
});

describe('the pool', () => {
  it('fails the frame whose worker dies, replaces the worker and decodes the next frame', async () => {
    const crashing = createPixelCodecs({ workers: 1, inlineBytes: 0, workerUrl: new URL('./crash-worker.ts', import.meta.url) });
    const ct = await sampleFrames('CT_small.dcm');
    await stillWorks(crashing);
    const crash = Buffer.concat([Buffer.from('CRASH'), Buffer.alloc(100)]);
    const err = await failure(crashing.decode(J2K_LOSSLESS, crash, ct.module));
    expect(err).toMatchObject({ status: 500, code: 'PixelWorkerFailed' });
    await stillWorks(crashing);
    await crashing.close();
  });

  it('answers 503 with Retry-After once the queue is full, and serves the frames it accepted', async () => {
    const busy = createPixelCodecs({ workers: 1, maxQueue: 2, inlineBytes: 0 });
    const ct = await sampleFrames('CT_small.dcm');
    const j2k = await pixels.encode(J2K_LOSSLESS, { module: ct.module, pixels: ct.frames[0] });
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => busy.decode(J2K_LOSSLESS, j2k.bytes, j2k.module)));
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as PixelError);
    const served = results.filter((r) => r.status === 'fulfilled');
    expect(rejected.length).toBeGreaterThan(0);
    expect(served.length).toBeGreaterThan(0);
    for (const e of rejected) {
      expect(e).toBeInstanceOf(PixelError);
      expect(e).toMatchObject({ status: 503, code: 'PixelServiceBusy' });
      expect(e.headers['Retry-After']).toBeDefined();
    }
    for (const r of served) expect((r as PromiseFulfilledResult<{ pixels: Buffer }>).value.pixels.equals(ct.frames[0])).toBe(true);
    await busy.close();
  });

  it('refuses work after close with 503', async () => {
    const closing = createPixelCodecs({ workers: 1, inlineBytes: 0 });
    await closing.close();
    const rle = await sampleFrames('SC_rgb_rle_2frame.dcm');
    expect((await failure(closing.decode(rle.transferSyntaxUid, rle.frames[0], rle.module))).status).toBe(503);
  });

  it('runs the compiled worker from the built server (npm start)', async () => {
    const out = `dist/test-pixels-${process.pid}`;
    try {
      await buildServer(out);
      expect(fs.existsSync(path.join(ROOT, out, 'server/pixels/worker.js'))).toBe(true);
      const built = (await import(pathToFileURL(path.join(ROOT, out, 'server/pixels/codecs.js')).href)) as typeof import('../../server/pixels/codecs.js');
      const codecs = built.createPixelCodecs({ workers: 1, inlineBytes: 0 });
      const rle = await sampleFrames('SC_rgb_rle_2frame.dcm');
      const d = await codecs.decode(rle.transferSyntaxUid, rle.frames[1], rle.module);
      expect([...d.pixels.subarray(0, 3)]).toEqual([0, 255, 255]);
      await codecs.close();
    } finally {
      fs.rmSync(path.join(ROOT, out), { recursive: true, force: true });
    }
  });
});
