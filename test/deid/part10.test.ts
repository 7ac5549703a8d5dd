import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { deidentifyPart10, WithheldError } from '../../server/deid/part10.js';
import { Deidentifier } from '../../server/deid/profile.js';
import { scanPart10 } from '../../server/dicom/scan.js';
import { sample } from '../helpers.js';

/** The pixel data value's bytes, fragment by fragment, as the ingest scanner finds them. */
async function pixelBytes(bytes: Buffer): Promise<Buffer[]> {
  const scan = await scanPart10(
    (async function* () {
      yield bytes;
    })(),
    SCAN,
  );
  return (scan.pixelData?.fragments ?? []).map((f) => bytes.subarray(f.offset, f.offset + f.length));
}

const KEY = Buffer.from('project-one-key-0123456789abcdef');
const SCAN = { bulkThreshold: 1024, maxHeaderBytes: 64 * 1024 * 1024, maxSequenceDepth: 32, maxDataElements: 1_000_000 };

function dump(bytes: Buffer): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-deid-'));
  const file = path.join(dir, 'x.dcm');
  fs.writeFileSync(file, bytes);
  try {
    return execFileSync(
      'dcmdump',
      ['+P', '0010,0010', '+P', '0010,0020', '+P', '0020,000d', '+P', '0002,0003', '+P', '0008,0018', '+P', '0012,0062', '+P', '7fe0,0010', '-q', file],
      { encoding: 'latin1' },
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('de-identified Part-10 instances', () => {
  it('have the same table applied as the attributes, and keep their pixel data', async () => {
    const original = sample('CT_small.dcm');
    const before = dump(original);
    expect(before).toMatch(/CompressedSamples\^CT1/);
    const d = new Deidentifier(KEY, {});
    const out = await deidentifyPart10(original, d, SCAN);
    const after = dump(out);
    expect(after).not.toMatch(/CompressedSamples/);
    expect(after).toMatch(/\(0012,0062\) CS \[YES\]/);
    const sop = /\(0008,0018\) UI \[([\d.]+)\]/.exec(before)![1];
    expect(after).toContain(`(0008,0018) UI [${d.uid(sop)}]`);
    expect(after).toContain(`(0002,0003) UI [${d.uid(sop)}]`);
    const pixels = (s: string) => /\(7fe0,0010\) (\w\w) .*# +(\d+),/.exec(s)?.slice(1);
    expect(pixels(after)).toEqual(pixels(before));
    expect(await pixelBytes(out)).toEqual(await pixelBytes(original));
  });

  it('keep an encapsulated transfer syntax and its frames', async () => {
    const original = sample('JPEG2000.dcm');
    const out = await deidentifyPart10(original, new Deidentifier(KEY, { allowBurnedIn: true }), SCAN);
    const after = dump(out);
    expect(after).toMatch(/\(7fe0,0010\) OB \(PixelSequence/);
    const frames = await pixelBytes(original);
    expect(frames.length).toBeGreaterThan(0);
    expect(await pixelBytes(out)).toEqual(frames);
  });

  it('withholds a secondary capture that does not say it has no burned-in text', async () => {
    await expect(deidentifyPart10(sample('SC_rgb_jpeg.dcm'), new Deidentifier(KEY, {}), SCAN)).rejects.toThrow(WithheldError);
    await expect(deidentifyPart10(sample('SC_rgb_jpeg.dcm'), new Deidentifier(KEY, { allowBurnedIn: true }), SCAN)).resolves.toBeInstanceOf(Buffer);
  });
});
