import { parseInstance } from '../../server/dicom/parse.js';
import { pixelModuleOf } from '../../server/pixels/module.js';
import type { PixelModule } from '../../server/pixels/types.js';
import fs from 'node:fs';
import path from 'node:path';
import { fixturesDir, sample } from '../helpers.js';

export interface SampleFrames {
  transferSyntaxUid: string;
  module: PixelModule;
  /** Each frame's bytes: native ones as stored, encapsulated ones their fragments concatenated. */
  frames: Buffer[];
}

/**
 * A Part-10 file's pixel module and frames, located as the archive locates
 * them (scan.ts + frames.ts): a sample by name, or `pixels/<name>` from the
 * re-encoded fixtures.
 */
export async function sampleFrames(name: string): Promise<SampleFrames> {
  const file = name.includes('/') ? fs.readFileSync(path.join(fixturesDir, '..', name)) : sample(name);
  const parsed = await parseInstance(
    (async function* () {
      yield file;
    })(),
    { bulkThreshold: 1024, maxHeaderBytes: 1 << 24, maxSequenceDepth: 32, maxDataElements: 1_000_000 },
  );
  if (!parsed.frames) throw new Error(`${name} has no frames`);
  const frames = parsed.frames.map((spans) => Buffer.concat(spans.map((s) => file.subarray(s.offset, s.offset + s.length))));
  return { transferSyntaxUid: parsed.transferSyntaxUid, module: pixelModuleOf(parsed.dataset), frames };
}
