import { describe, expect, it } from 'vitest';
import { parseInstance, type ParsedInstance } from '../../server/dicom/parse.js';
import type { DicomJson } from '../../server/dicom/json.js';
import { VALID_VRS, vrOf } from '../../server/dicom/tags.js';
import { resolveJsonVrs } from '../../server/dicom/vr.js';
import { el, iel, IMPLICIT_LE, item, newUids, part10, sq, text, u16 } from './build.js';

// Every "vr" Cairn writes is one of PS3.5 Table 6.2-1, the registry's
// choices resolved from the data set (PS3.5 §A.1, PS3.3).

const LIMITS = { bulkThreshold: 1024, maxHeaderBytes: 1 << 26, maxSequenceDepth: 32, maxDataElements: 1_000_000 };

async function parse(bytes: Buffer): Promise<ParsedInstance> {
  async function* one() {
    yield bytes;
  }
  return parseInstance(one(), LIMITS);
}

const pixels = (n: number) => Buffer.alloc(n * 2, 1);

/** An Implicit VR Little Endian MR-like instance with pixel values, a Modality LUT and 16-bit pixels. */
function implicitImage(pixelRepresentation: number, lut: { entries: number; first: number; data: Buffer }): Buffer {
  return part10(newUids('1.2.840.10008.5.1.4.1.1.4'), {
    ts: IMPLICIT_LE,
    after: [
      iel('00280002', u16(1)),
      iel('00280010', u16(4)),
      iel('00280011', u16(4)),
      iel('00280100', u16(16)),
      iel('00280101', u16(12)),
      iel('00280102', u16(11)),
      iel('00280103', u16(pixelRepresentation)),
      iel('00280106', u16(-100)), // Smallest Image Pixel Value: US or SS
      iel('00280107', u16(200)),
      // Modality LUT Sequence, one item
      iel('00283000', iel('FFFEE000', Buffer.concat([iel('00283002', u16(lut.entries, lut.first, 16)), iel('00283006', lut.data)]))),
      iel('7FE00010', pixels(16)),
    ],
  });
}

function allVrs(d: DicomJson, out: string[] = []): string[] {
  for (const a of Object.values(d)) {
    out.push(a.vr);
    if (a.vr === 'SQ') for (const i of (a.Value ?? []) as DicomJson[]) allVrs(i, out);
  }
  return out;
}

describe('Implicit VR Little Endian', () => {
  it('gives signed values as SS when Pixel Representation is 1, LUT Data as OW and Pixel Data as OW', async () => {
    const p = await parse(implicitImage(1, { entries: 4096, first: -1024, data: u16(...Array.from({ length: 8 }, (_, i) => i)) }));
    expect(p.dataset['00280106']).toEqual({ vr: 'SS', Value: [-100] });
    expect(p.dataset['00280107']).toEqual({ vr: 'SS', Value: [200] });
    const lut = (p.dataset['00283000'].Value as DicomJson[])[0];
    // PS3.3 C.11.1.1.1: the first and third values of a LUT Descriptor are unsigned whatever its VR.
    expect(lut['00283002']).toEqual({ vr: 'SS', Value: [4096, -1024, 16] });
    expect(lut['00283006'].vr).toBe('OW');
    expect(Buffer.from(lut['00283006'].InlineBinary!, 'base64')).toEqual(u16(0, 1, 2, 3, 4, 5, 6, 7));
    expect(p.bulk['7FE00010'].vr).toBe('OW');
    expect(allVrs(p.dataset).filter((vr) => !VALID_VRS.has(vr))).toEqual([]);
  });

  it('gives them as US when Pixel Representation is 0', async () => {
    const p = await parse(implicitImage(0, { entries: 4096, first: 0, data: u16(1, 2) }));
    expect(p.dataset['00280106']).toEqual({ vr: 'US', Value: [65436] });
    expect((p.dataset['00283000'].Value as DicomJson[])[0]['00283002']).toEqual({ vr: 'US', Value: [4096, 0, 16] });
  });

  it('reads the LUT Data of a one-entry LUT as US', async () => {
    const p = await parse(implicitImage(0, { entries: 1, first: 0, data: u16(4095) }));
    expect((p.dataset['00283000'].Value as DicomJson[])[0]['00283006']).toEqual({ vr: 'US', Value: [4095] });
  });
});

describe('Explicit VR elements sent as UN', () => {
  it('resolves a known "US or SS" element from Pixel Representation, and "OB or OW" from Waveform Bits Allocated', async () => {
    const waveform = (bits: number) => item(Buffer.concat([el('54001004', 'US', u16(bits)), el('54001010', 'UN', Buffer.from([1, 2, 3, 4]))]));
    const p = await parse(
      part10(newUids(), {
        after: [el('00280103', 'US', u16(1)), el('00280106', 'UN', u16(-5)), sq('54000100', [waveform(16), waveform(8)])],
      }),
    );
    expect(p.dataset['00280106']).toEqual({ vr: 'SS', Value: [-5] });
    const [w16, w8] = p.dataset['54000100'].Value as DicomJson[];
    expect(w16['54001010']).toEqual({ vr: 'OW', InlineBinary: 'AQIDBA==' });
    expect(w8['54001010']).toEqual({ vr: 'OB', InlineBinary: 'AQIDBA==' });
  });

  it('keeps a VR the encoding states', async () => {
    const p = await parse(part10(newUids(), { after: [el('00280103', 'US', u16(1)), el('00280106', 'US', u16(7)), el('00281050', 'DS', text('40'))] }));
    expect(p.dataset['00280106']).toEqual({ vr: 'US', Value: [7] });
    expect(p.dataset['00281050']).toEqual({ vr: 'DS', Value: [40] });
  });
});

describe('vrOf', () => {
  it('is a valid VR for every tag: the first reading of a choice, overlay groups included', () => {
    expect(vrOf('00280106')).toBe('US');
    expect(vrOf('7FE00010')).toBe('OW');
    expect(vrOf('00283006')).toBe('OW');
    expect(vrOf('00041200')).toBe('UL');
    expect(vrOf('60023000')).toBe('OW');
    expect(vrOf('60020010')).toBe('US');
    expect(vrOf('00091010')).toBe('UN');
    expect(vrOf('00100010')).toBe('PN');
  });
});

describe('resolveJsonVrs (stored metadata)', () => {
  it('turns the VRs of metadata stored before they were resolved into VRs, values following', () => {
    const stored: DicomJson = {
      '00280103': { vr: 'US', Value: [1] },
      '00280106': { vr: 'US', Value: [65436] },
      '00283000': { vr: 'SQ', Value: [{ '00283002': { vr: 'US', Value: [4096, 64512, 16] }, '00283006': { vr: 'UN', InlineBinary: 'AQACAA==' } }] },
      '00041200': { vr: 'UN', InlineBinary: Buffer.from([0x10, 0, 0, 0]).toString('base64') },
      '7FE00010': { vr: 'ox', BulkDataURI: 'studies/1/series/2/instances/3/bulkdata/7FE00010' },
    };
    expect(resolveJsonVrs(stored, { implicit: true, littleEndian: true })).toBe(true);
    expect(stored['00280106']).toEqual({ vr: 'SS', Value: [-100] });
    const lut = (stored['00283000'].Value as DicomJson[])[0];
    expect(lut['00283002']).toEqual({ vr: 'SS', Value: [4096, -1024, 16] });
    expect(lut['00283006']).toEqual({ vr: 'OW', InlineBinary: 'AQACAA==' });
    expect(stored['00041200']).toEqual({ vr: 'UL', Value: [16] });
    expect(stored['7FE00010'].vr).toBe('OW');
    expect(resolveJsonVrs(stored, { implicit: true, littleEndian: true })).toBe(false);
  });
});
