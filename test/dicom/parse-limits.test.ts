import { describe, expect, it } from 'vitest';
import { ParseError, parseInstance, type ParsedInstance } from '../../server/dicom/parse.js';
import { scanPart10, type ScanOptions } from '../../server/dicom/scan.js';
import type { DicomJson } from '../../server/dicom/json.js';
import { contentItem, el, item, nestedContent, newUids, part10, sq, text, u16, UNDEFINED, delimiter } from './build.js';

const LIMITS: ScanOptions = { bulkThreshold: 1024, maxHeaderBytes: 64 * 1024 * 1024, maxSequenceDepth: 32, maxDataElements: 1_000_000 };

async function* chunks(b: Buffer, size = 64 * 1024): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

async function failure(bytes: Buffer, opts: Partial<ScanOptions> = {}) {
  const err = await parseInstance(chunks(bytes), { ...LIMITS, ...opts }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ParseError);
  return (err as ParseError).failure;
}

/** How many sequences nest in a data set, an empty one counting too. */
function depthOf(d: DicomJson): number {
  let max = 0;
  for (const a of Object.values(d)) if (a.vr === 'SQ') max = Math.max(max, 1 + Math.max(0, ...((a.Value ?? []) as DicomJson[]).map(depthOf)));
  return max;
}

describe('nesting limit (MAX_SEQUENCE_DEPTH)', () => {
  it('refuses an instance whose Content Sequences nest 10,000 deep, as not understood, naming the limit', async () => {
    const bytes = part10(newUids(), { after: [nestedContent(10_000)] });
    const f = await failure(bytes);
    expect(f.kind).toBe('limit');
    expect(f.message).toMatch(/more than 32 deep \(MAX_SEQUENCE_DEPTH\) at element 0040A730/);
  });

  it('reads sequences nested exactly to the limit and refuses one level more', async () => {
    const u = newUids();
    const ok = await parseInstance(chunks(part10(u, { after: [nestedContent(8)] })), { ...LIMITS, maxSequenceDepth: 8 });
    expect(depthOf(ok.dataset)).toBe(8);
    expect((await failure(part10(newUids(), { after: [nestedContent(9)] }), { maxSequenceDepth: 8 })).kind).toBe('limit');
  });

  it('stores a realistic SR content tree 16 items deep under the default limit', async () => {
    const u = newUids('1.2.840.10008.5.1.4.1.1.88.33');
    // The root content item's attributes sit at the top of the data set.
    const root = contentItem(1, 16);
    const p: ParsedInstance = await parseInstance(chunks(part10(u, { after: [root] })), LIMITS);
    let node = p.dataset;
    let levels = 1;
    while (node['0040A730']) {
      node = (node['0040A730'].Value as DicomJson[])[0];
      levels++;
    }
    expect(levels).toBe(16);
    expect(node['0040A040'].Value).toEqual(['NUM']);
    const measured = (node['0040A300'].Value as DicomJson[])[0];
    expect(measured['0040A30A'].Value).toEqual([12.5]);
    expect(((measured['004008EA'].Value as DicomJson[])[0]['00080100'] as { Value: string[] }).Value).toEqual(['mm']);
    // 15 Content Sequences, then Measured Value Sequence > Measurement Units Code Sequence.
    expect(depthOf(p.dataset)).toBe(17);
  });
});

describe('element limit (MAX_DATA_ELEMENTS)', () => {
  const items = (n: number) =>
    sq(
      '00081115',
      Array.from({ length: n }, () => item(el('00281050', 'DS', text('40')))),
    );

  it('refuses an instance with more data elements and items than allowed, naming the limit', async () => {
    const f = await failure(part10(newUids(), { after: [items(2000)] }), { maxDataElements: 1000 });
    expect(f.kind).toBe('limit');
    expect(f.message).toMatch(/more than 1000 data elements, items and fragments \(MAX_DATA_ELEMENTS\)/);
  });

  it('counts pixel data fragments, which never reach the header', async () => {
    const fragments = Array.from({ length: 1500 }, () => item(Buffer.alloc(0)));
    const pixels = Buffer.concat([el('7FE00010', 'OB', Buffer.alloc(0), UNDEFINED), item(Buffer.alloc(0)), ...fragments, delimiter(0xe0dd)]);
    const bytes = part10(newUids(), { ts: '1.2.840.10008.1.2.4.50', after: [pixels] });
    expect((await failure(bytes, { maxDataElements: 1000 })).kind).toBe('limit');
    // The same instance under a limit it fits in is read.
    const p = await parseInstance(chunks(bytes), { ...LIMITS, maxDataElements: 2000 });
    expect(p.bulk['7FE00010']).toBeDefined();
  });

  it('reads an instance just under the limit', async () => {
    const p = await parseInstance(chunks(part10(newUids(), { after: [items(400)] })), { ...LIMITS, maxDataElements: 1000 });
    expect(p.dataset['00081115'].Value).toHaveLength(400);
  });
});

describe('reading a long header', () => {
  it('lets other work run on the event loop while it reads', async () => {
    // One in-memory chunk: without turns of the event loop of its own, the
    // scan would finish before any callback queued after it started.
    const bytes = part10(newUids(), {
      after: [
        sq(
          '00081115',
          Array.from({ length: 5000 }, () => item(el('00280010', 'US', u16(7)))),
        ),
      ],
    });
    let ran = false;
    const scanning = scanPart10(chunks(bytes, bytes.length), LIMITS);
    setImmediate(() => (ran = true));
    await scanning;
    expect(ran).toBe(true);
  });
});
