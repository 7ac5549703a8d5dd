import dcmjs from 'dcmjs';
import { describe, expect, it } from 'vitest';
import { openPart10, pixelFacts, rewritePart10, textValue } from '../../server/dicom/rewrite.js';
import { sample } from '../helpers.js';

// The Part-10 rewriter on hand-made data sets: the cases the samples do not
// cover (odd lengths, UN of undefined length, values too long for a 16-bit
// length, attributes set, encapsulated output).

const IMPLICIT_LE = '1.2.840.10008.1.2';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const RLE = '1.2.840.10008.1.2.5';

function meta(ts: string): Buffer {
  const uid = Buffer.from(ts.length % 2 ? `${ts}\0` : ts, 'latin1');
  const el = Buffer.alloc(8);
  el.writeUInt16LE(0x0002, 0);
  el.writeUInt16LE(0x0010, 2);
  el.write('UI', 4, 'latin1');
  el.writeUInt16LE(uid.length, 6);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), el, uid]);
}

/** An Implicit VR LE element. */
function implicit(group: number, element: number, value: Buffer, length = value.length): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16LE(group, 0);
  h.writeUInt16LE(element, 2);
  h.writeUInt32LE(length, 4);
  return Buffer.concat([h, value]);
}

/** An Explicit VR LE element with a 4-byte length (OB, UN, SQ…). */
function explicitLong(group: number, element: number, vr: string, value: Buffer, length = value.length): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16LE(group, 0);
  h.writeUInt16LE(element, 2);
  h.write(vr, 4, 'latin1');
  h.writeUInt32LE(length, 8);
  return Buffer.concat([h, value]);
}

const item = (body: Buffer, length = body.length) => implicit(0xfffe, 0xe000, body, length);
const ITEM_END = implicit(0xfffe, 0xe00d, Buffer.alloc(0));
const SEQ_END = implicit(0xfffe, 0xe0dd, Buffer.alloc(0));
const UNDEFINED = 0xffffffff;

function read(file: Buffer) {
  return dcmjs.data.DicomMessage.readFile(file.buffer.slice(file.byteOffset, file.byteOffset + file.length));
}

async function rewrite(file: Buffer, opts: Parameters<typeof rewritePart10>[1] = { transferSyntaxUid: EXPLICIT_LE }) {
  return rewritePart10(await openPart10(file), opts);
}

describe('Part-10 rewriter', () => {
  it('states the registry VRs of an implicit data set, a private creator as LO and an unknown private element as UN', async () => {
    const file = Buffer.concat([
      meta(IMPLICIT_LE),
      implicit(0x0010, 0x0010, Buffer.from('Doe^Jo')),
      implicit(0x0028, 0x0010, Buffer.from([4, 0])),
      implicit(0x0029, 0x0010, Buffer.from('ACME')),
      implicit(0x0029, 0x1001, Buffer.from([1, 2, 3, 4])),
    ]);
    const out = await rewrite(file);
    const { dict, meta: m } = read(out);
    expect(m['00020010'].Value).toEqual([EXPLICIT_LE]);
    expect([dict['00100010'].vr, dict['00280010'].vr, dict['00290010'].vr, dict['00291001'].vr]).toEqual(['PN', 'US', 'LO', 'UN']);
    expect(dict['00280010'].Value).toEqual([4]);
  });

  it('pads odd values to an even length (text with a space, UI and binary with NUL)', async () => {
    const file = Buffer.concat([meta(IMPLICIT_LE), implicit(0x0008, 0x0018, Buffer.from('1.2.3')), implicit(0x0010, 0x0020, Buffer.from('ABC'))]);
    const out = await rewrite(file);
    expect(out.includes(Buffer.from('1.2.3\0'))).toBe(true);
    expect(out.includes(Buffer.from('ABC '))).toBe(true);
    expect(read(out).dict['00100020'].Value).toEqual(['ABC']);
  });

  it('writes a value too long for a 16-bit length as UN (PS3.5 §6.2.2)', async () => {
    const long = Buffer.alloc(70_000, 0x41);
    const out = await rewrite(Buffer.concat([meta(IMPLICIT_LE), implicit(0x0010, 0x4000, long)]));
    const at = out.indexOf(Buffer.from([0x10, 0x00, 0x00, 0x40]));
    expect(out.toString('latin1', at + 4, at + 6)).toBe('UN');
    expect(out.readUInt32LE(at + 8)).toBe(70_000);
  });

  it('makes a UN of undefined length an SQ with defined lengths, its implicit items made explicit', async () => {
    const inner = implicit(0x0008, 0x0100, Buffer.from('T-1234'));
    const file = Buffer.concat([meta(EXPLICIT_LE), explicitLong(0x0008, 0x2218, 'UN', Buffer.concat([item(inner, UNDEFINED), ITEM_END, SEQ_END]), UNDEFINED)]);
    const out = await rewrite(file);
    const at = out.indexOf(Buffer.from([0x08, 0x00, 0x18, 0x22]));
    expect(out.toString('latin1', at + 4, at + 6)).toBe('SQ');
    expect(out.readUInt32LE(at + 8)).not.toBe(UNDEFINED);
    const seq = read(out).dict['00082218'];
    expect(seq.vr).toBe('SQ');
    expect((seq.Value[0] as Record<string, { vr: string; Value: string[] }>)['00080100']).toMatchObject({ vr: 'SH', Value: ['T-1234'] });
  });

  it('sets attributes in tag order, replacing those present', async () => {
    const file = Buffer.concat([
      meta(IMPLICIT_LE),
      implicit(0x0028, 0x0004, Buffer.from('RGB ')),
      implicit(0x0028, 0x0010, Buffer.from([2, 0])),
      implicit(0x0028, 0x0011, Buffer.from([2, 0])),
    ]);
    const out = await rewrite(file, {
      transferSyntaxUid: EXPLICIT_LE,
      set: { '00282110': { vr: 'CS', value: textValue('01') }, '00280004': { vr: 'CS', value: textValue('YBR_FULL_422') } },
    });
    const { dict } = read(out);
    expect(Object.keys(dict)).toEqual(['00280004', '00280010', '00280011', '00282110']);
    expect(dict['00280004'].Value).toEqual(['YBR_FULL_422']);
    expect(dict['00282110'].Value).toEqual(['01']);
  });

  it('writes new encapsulated pixel data with a Basic Offset Table and one even fragment per frame', async () => {
    const out = await rewrite(sample('MR_small.dcm'), { transferSyntaxUid: RLE, pixels: { fragments: [Buffer.alloc(5, 1), Buffer.alloc(6, 2)] } });
    const p = await openPart10(out);
    expect(p.transferSyntaxUid).toBe(RLE);
    const pd = pixelFacts(p).pixelData!;
    expect(pd.encapsulated).toBe(true);
    expect(pd.offsetTable).toEqual([0, 14]);
    expect(pd.fragments.map((f) => f.length)).toEqual([6, 6]);
  });

  it('reads a data set labelled explicit that is implicit, as the header scan does', async () => {
    const out = await rewrite(sample('SC_rgb_jpeg.dcm'), { transferSyntaxUid: '1.2.840.10008.1.2.4.50' });
    const { dict } = read(out);
    expect(dict['00080016'].vr).toBe('UI');
    expect(dict['00280004'].Value).toEqual(['RGB']);
  });
});
