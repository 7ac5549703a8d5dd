import { afterAll, describe, expect, it } from 'vitest';
import { createPixelCodecs } from '../../server/pixels/codecs.js';
import { PixelError } from '../../server/pixels/types.js';
import { renderFrame, type RenderOptions } from '../../server/render/pipeline.js';
import { sampleFrames } from './samples.js';

// Rendering (decode, then the display pipeline of PS3.3 §C.11) in one trip to
// a pool worker: the same 8-bit image as on the calling thread, errors that
// keep their status across the thread, and frames above the inline size
// never rendered on the event loop.

const pooled = createPixelCodecs({ workers: 1, inlineBytes: 0, inlineRenderPixels: 0 });
const inline = createPixelCodecs({ workers: 1 });
const crashing = createPixelCodecs({ workers: 1, inlineRenderPixels: 0, workerUrl: new URL('./crash-worker.ts', import.meta.url) });
afterAll(() => Promise.all([pooled.close(), inline.close(), crashing.close()]));

describe('rendering in the pixel pool', () => {
  const cases: [string, RenderOptions][] = [
    ['CT_small.dcm', { rescale: { slope: 1, intercept: -1024 }, window: { center: 40, width: 400, fn: 'LINEAR' } }],
    ['SC_rgb_rle_2frame.dcm', {}],
    ['pixels/ct_jls.dcm', { window: { center: 1000, width: 2000, fn: 'SIGMOID' } }],
    ['pixels/rgb_baseline.dcm', {}],
  ];
  for (const [name, options] of cases) {
    it(`makes the same image as the calling thread for ${name}`, async () => {
      const s = await sampleFrames(name);
      const made = await pooled.render(s.transferSyntaxUid, s.frames[0], s.module, options);
      const here = renderFrame(await inline.decode(s.transferSyntaxUid, s.frames[0], s.module), options);
      expect({ width: made.width, height: made.height, channels: made.channels }).toEqual({ width: here.width, height: here.height, channels: here.channels });
      expect(made.data.equals(here.data)).toBe(true);
    });
  }

  it('answers what cannot be rendered with its status and code, across the thread', async () => {
    const ct = await sampleFrames('CT_small.dcm');
    const err = await pooled.render(ct.transferSyntaxUid, ct.frames[0], { ...ct.module, photometricInterpretation: 'YBR_ICT' }, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PixelError);
    expect(err).toMatchObject({ status: 422, code: 'RenderingNotSupported' });
  });

  it('sends a native frame above the inline size to a worker, not the event loop', async () => {
    const ct = await sampleFrames('CT_small.dcm');
    const frame = Buffer.from(ct.frames[0]);
    frame.write('CRASH', 0, 'latin1');
    // The test worker ends its thread on this frame: only a frame sent to the pool can fail this way.
    const err = await crashing.render(ct.transferSyntaxUid, frame, ct.module, {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 500, code: 'PixelWorkerFailed' });
    // Small frames (here, under the default 256×256) are rendered where they are asked for.
    const small = await inline.render(ct.transferSyntaxUid, frame, ct.module, {});
    expect(small.width).toBe(ct.module.columns);
  });
});
