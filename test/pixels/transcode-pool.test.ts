import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXPLICIT_VR_LE, JPEG_BASELINE, JPEG_LS_LOSSLESS, RLE_LOSSLESS } from '../../server/dicom/transfer-syntax.js';
import { createPixelCodecs } from '../../server/pixels/codecs.js';
import { CannotEncode, transcodeInstance } from '../../server/transcode.js';
import { fixturesDir, sample } from '../helpers.js';

// A whole instance in another transfer syntax, made in one pool worker
// (parse, byte swap, decode, encode, rewrite): the same bytes as on the
// calling thread, errors that keep their kind across the thread, and large
// instances never rewritten on the event loop.

const pooled = createPixelCodecs({ workers: 1, inlineTranscodeBytes: 0 });
const inline = createPixelCodecs({ workers: 1, inlineTranscodeBytes: Number.MAX_SAFE_INTEGER });
const crashing = createPixelCodecs({ workers: 1, inlineTranscodeBytes: 0, workerUrl: new URL('./crash-worker.ts', import.meta.url) });
afterAll(() => Promise.all([pooled.close(), inline.close(), crashing.close()]));

const fixture = (name: string) => fs.readFileSync(path.join(fixturesDir, '..', 'pixels', name));

describe('transcoding whole instances in the pixel pool', () => {
  const cases: [string, () => Buffer, string][] = [
    ['Big Endian to Explicit VR Little Endian', () => fixture('ct_be.dcm'), EXPLICIT_VR_LE],
    ['Implicit VR to Explicit VR Little Endian', () => sample('MR_small_implicit.dcm'), EXPLICIT_VR_LE],
    ['JPEG-LS to Explicit VR Little Endian', () => fixture('ct_jls.dcm'), EXPLICIT_VR_LE],
    ['RLE to JPEG-LS', () => fixture('ct_rle.dcm'), JPEG_LS_LOSSLESS],
    ['Explicit VR Little Endian to RLE', () => sample('CT_small.dcm'), RLE_LOSSLESS],
  ];
  for (const [what, file, to] of cases) {
    it(`makes the same instance as the calling thread: ${what}`, async () => {
      const made = await pooled.transcode(file(), to);
      const here = await inline.transcode(file(), to);
      expect(made.equals(here)).toBe(true);
      expect(made.equals(await transcodeInstance(file(), to, inline))).toBe(true);
    });
  }

  it('keeps a refusal to encode as CannotEncode, with the module, across the thread', async () => {
    // 16-bit pixels cannot be JPEG Baseline (8-bit only, PS3.5 §A.4.1).
    const err = await pooled.transcode(sample('CT_small.dcm'), JPEG_BASELINE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CannotEncode);
    expect((err as CannotEncode).module.bitsAllocated).toBe(16);
    expect((err as CannotEncode).status).toBe(406);
  });

  it('sends an instance above the inline size to a worker, not the event loop', async () => {
    const file = Buffer.from(fixture('ct_be.dcm'));
    file.write('CRASH', 0, 'latin1'); // in the preamble, which a Part-10 reader ignores
    const err = await crashing.transcode(file, EXPLICIT_VR_LE).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 500, code: 'PixelWorkerFailed' });
    expect((await inline.transcode(file, EXPLICIT_VR_LE)).length).toBeGreaterThan(0);
  });
});
