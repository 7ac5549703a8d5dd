import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createPixelCodecs } from '../../server/pixels/codecs.js';
import { PIXEL_NICENESS, threadInfo } from '../../server/pixels/priority.js';
import { encodeFrame } from '../../server/render/encode.js';
import { renderFrame, type RenderOptions } from '../../server/render/pipeline.js';
import { sampleFrames } from './samples.js';

// Pixel work yields the CPU to the event loop and PostgreSQL: the pool's
// worker threads and libvips' threads run at a lower priority (a higher
// Linux nice value) than the thread that serves requests.

const pooled = createPixelCodecs({ workers: 1, inlineBytes: 0, inlineRenderPixels: 0 });
const inline = createPixelCodecs({ workers: 1 });
afterAll(() => Promise.all([pooled.close(), inline.close()]));

const CT: RenderOptions = { rescale: { slope: 1, intercept: -1024 }, window: { center: 40, width: 400, fn: 'LINEAR' } };

function threads(): { tid: number; name: string; nice: number }[] {
  return fs.readdirSync('/proc/self/task').flatMap((t) => {
    const info = threadInfo(Number(t));
    return info ? [{ tid: Number(t), ...info }] : [];
  });
}

describe.runIf(fs.existsSync('/proc/thread-self'))('the priority of pixel work', () => {
  it('runs pool workers below the event loop, which keeps its own priority', async () => {
    const before = threads().filter((t) => t.nice >= PIXEL_NICENESS).length;
    const ct = await sampleFrames('CT_small.dcm');
    await pooled.decode(ct.transferSyntaxUid, ct.frames[0], ct.module);
    const after = threads();
    expect(after.filter((t) => t.nice >= PIXEL_NICENESS).length).toBeGreaterThan(before);
    expect(after.find((t) => t.tid === process.pid)?.nice).toBe(0);
  });

  it('leaves the main thread at its priority when it loads the worker module itself', async () => {
    await import('../../server/pixels/worker.js');
    expect(threads().find((t) => t.tid === process.pid)?.nice).toBe(0);
  });

  it('runs libvips threads below the event loop once an image is made', async () => {
    const ct = await sampleFrames('CT_small.dcm');
    await pooled.image(ct.transferSyntaxUid, Buffer.from(ct.frames[0]), ct.module, CT, { type: 'image/jpeg' });
    await inline.image(ct.transferSyntaxUid, ct.frames[0], ct.module, CT, { type: 'image/png' });
    const vips = threads().filter((t) => t.name.startsWith('libvips'));
    expect(vips.length).toBeGreaterThan(0);
    for (const t of vips) expect(t.nice).toBe(PIXEL_NICENESS);
  });
});

describe('an image made in one trip to a worker', () => {
  it('is the image the calling thread makes from the same frame', async () => {
    const ct = await sampleFrames('CT_small.dcm');
    const here = await encodeFrame(renderFrame(await inline.decode(ct.transferSyntaxUid, ct.frames[0], ct.module), CT), { type: 'image/png' });
    const made = await pooled.image(ct.transferSyntaxUid, ct.frames[0], ct.module, CT, { type: 'image/png' });
    expect(made.equals(here)).toBe(true);
  });

  it('moves a frame that is the whole of its memory to the worker, and copies one that is a view of more', async () => {
    const ct = await sampleFrames('CT_small.dcm');
    const whole = Buffer.from(ct.frames[0]);
    const file = Buffer.concat([Buffer.alloc(128), ct.frames[0]]);
    const view = file.subarray(128);
    const a = await pooled.image(ct.transferSyntaxUid, whole, ct.module, CT, { type: 'image/png' });
    const b = await pooled.image(ct.transferSyntaxUid, view, ct.module, CT, { type: 'image/png' });
    expect(a.equals(b)).toBe(true);
    expect(whole.byteLength).toBe(0);
    expect(view.equals(ct.frames[0])).toBe(true);
  });

  it('keeps the status and code of what cannot be rendered', async () => {
    const ct = await sampleFrames('CT_small.dcm');
    const err = await pooled
      .image(ct.transferSyntaxUid, ct.frames[0], { ...ct.module, photometricInterpretation: 'YBR_ICT' }, {}, { type: 'image/jpeg' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 422, code: 'RenderingNotSupported' });
  });

  it('codes JPEG with the standard Huffman tables of ISO 10918-1 Annex K, not optimised ones', async () => {
    const ct = await sampleFrames('CT_small.dcm');
    const jpeg = await pooled.image(ct.transferSyntaxUid, ct.frames[0], ct.module, CT, { type: 'image/jpeg' });
    // Table K.3, luminance DC: code lengths 0 1 5 1 1 1 1 1 1 0 0 0 0 0 0 0, values 0-11.
    const dcLuminance = Buffer.from([0x00, 0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const dht = jpeg.indexOf(Buffer.from([0xff, 0xc4]));
    expect(dht).toBeGreaterThan(0);
    expect(jpeg.indexOf(dcLuminance, dht)).toBeGreaterThan(dht);
  });
});
