import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeText, needsCharsetDecoding } from '../../server/dicom/charset.js';

const samples = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/samples');

/** VRs with a 4-byte length after 2 reserved bytes in explicit VR (PS3.5 §7.1.2). */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

/**
 * Raw value bytes of top-level elements of an explicit VR little endian
 * Part-10 file: 128-byte preamble, 'DICM', then group 0002 and the data set
 * (both explicit VR LE here). Stops after `until`; no undefined lengths.
 */
function readElements(file: string, until: number): Map<number, { vr: string; value: Uint8Array }> {
  const buf = fs.readFileSync(path.join(samples, file));
  expect(buf.toString('latin1', 128, 132)).toBe('DICM');
  const out = new Map<number, { vr: string; value: Uint8Array }>();
  let p = 132;
  while (p < buf.length) {
    const tag = (buf.readUInt16LE(p) << 16) | buf.readUInt16LE(p + 2);
    const vr = buf.toString('latin1', p + 4, p + 6);
    const long = LONG_VRS.has(vr);
    const len = long ? buf.readUInt32LE(p + 8) : buf.readUInt16LE(p + 6);
    const start = p + (long ? 12 : 8);
    if (len === 0xffffffff) throw new Error(`undefined length at ${tag.toString(16)}`);
    out.set(tag >>> 0, { vr, value: new Uint8Array(buf.subarray(start, start + len)) });
    if (tag >>> 0 >= until) break;
    p = start + len;
  }
  return out;
}

/** Specific Character Set values as a decoder sees them (backslash-split, CS padding trimmed). */
function charsetOf(els: Map<number, { value: Uint8Array }>): string[] {
  const v = els.get(0x00080005)?.value;
  return v
    ? Buffer.from(v)
        .toString('latin1')
        .split('\\')
        .map((t) => t.trim())
    : [];
}

const bytes = (...parts: (string | number[])[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? [...Buffer.from(p, 'latin1')] : p)));
const ESC = 0x1b;

describe('decodeText with real files', () => {
  it('decodes the ISO 2022 IR 87 Patient Name of chrJapMulti.dcm', () => {
    const els = readElements('chrJapMulti.dcm', 0x00100010);
    // The file says '\ISO 2022 IR 87' (empty value 1 = ASCII), not IR 13.
    expect(charsetOf(els)).toEqual(['', 'ISO 2022 IR 87']);
    const pn = els.get(0x00100010)!;
    expect(pn.vr).toBe('PN');
    const name = decodeText(pn.value, charsetOf(els), 'PN');
    console.log('chrJapMulti PatientName:', JSON.stringify(name));
    // Only the phonetic form is present in the bytes (pydicom expects the same).
    expect(name.trimEnd()).toBe('やまだ^たろう');
  });

  it('decodes both values of the multi-valued Other Patient Names of chrJapMulti.dcm', () => {
    const els = readElements('chrJapMulti.dcm', 0x00101001);
    const names = decodeText(els.get(0x00101001)!.value, charsetOf(els), 'PN');
    expect(names.trimEnd().split('\\')).toEqual(['やまだ^たろう', 'やまだ^たろう']);
  });

  it('decodes the ISO_IR 100 Patient Name of chrGerm.dcm', () => {
    const els = readElements('chrGerm.dcm', 0x00100010);
    expect(charsetOf(els)).toEqual(['ISO_IR 100']);
    const name = decodeText(els.get(0x00100010)!.value, charsetOf(els), 'PN');
    console.log('chrGerm PatientName:', JSON.stringify(name));
    expect(name.trimEnd()).toBe('Äneas^Rüdiger');
  });
});

describe('decodeText with PS3.5 examples', () => {
  it('decodes Korean ISO 2022 IR 149 (PS3.5 Annex I)', () => {
    const kr = [ESC, 0x24, 0x29, 0x43];
    const value = bytes('Hong^Gildong=', kr, [0xfb, 0xf3], '^', kr, [0xd1, 0xce, 0xd4, 0xd7], '=', kr, [0xc8, 0xab], '^', kr, [0xb1, 0xe6, 0xb5, 0xbf]);
    expect(decodeText(value, ['', 'ISO 2022 IR 149'], 'PN')).toBe('Hong^Gildong=洪^吉洞=홍^길동');
  });

  it('decodes Japanese ISO 2022 IR 87 with ASCII value 1 (PS3.5 Annex H, H.3.1)', () => {
    const jis = [ESC, 0x24, 0x42];
    const asc = [ESC, 0x28, 0x42];
    const value = bytes('Yamada^Tarou=', jis, ';3ED', asc, '^', jis, 'B@O:', asc, '=', jis, '$d$^$@', asc, '^', jis, '$?$m$&', asc);
    expect(decodeText(value, ['', 'ISO 2022 IR 87'], 'PN')).toBe('Yamada^Tarou=山田^太郎=やまだ^たろう');
  });

  it('decodes katakana value 1 with ISO 2022 IR 13 / IR 87 (PS3.5 Annex H, H.3.2)', () => {
    const jis = [ESC, 0x24, 0x42];
    const roman = [ESC, 0x28, 0x4a];
    const value = bytes(
      [0xd4, 0xcf, 0xc0, 0xde],
      '^',
      [0xc0, 0xdb, 0xb3],
      '=',
      jis,
      ';3ED',
      roman,
      '^',
      jis,
      'B@O:',
      roman,
      '=',
      jis,
      '$d$^$@',
      roman,
      '^',
      jis,
      '$?$m$&',
      roman,
    );
    expect(decodeText(value, ['ISO 2022 IR 13', 'ISO 2022 IR 87'], 'PN')).toBe('ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう');
  });
});

describe('decodeText with synthetic values', () => {
  it('decodes single-valued ISO_IR 13 half-width katakana (JIS X 0201)', () => {
    expect(decodeText(bytes([0xd4, 0xcf, 0xc0, 0xde], '^', [0xc0, 0xdb, 0xb3]), ['ISO_IR 13'], 'PN')).toBe('ﾔﾏﾀﾞ^ﾀﾛｳ');
  });

  it('decodes JIS X 0212 via ISO 2022 IR 159', () => {
    const value = bytes([ESC, 0x24, 0x28, 0x44], '0!', [ESC, 0x28, 0x42], 'x');
    expect(decodeText(value, ['', 'ISO 2022 IR 87', 'ISO 2022 IR 159'], 'LO')).toBe('丂x');
  });

  it('decodes GB 2312 in G1 via ISO 2022 IR 58', () => {
    const value = bytes('Wang^XiaoDong=', [ESC, 0x24, 0x29, 0x41, 0xcd, 0xf5], '^', [ESC, 0x24, 0x29, 0x41], [0xd0, 0xa1, 0xb6, 0xab]);
    expect(decodeText(value, ['', 'ISO 2022 IR 58'], 'PN')).toBe('Wang^XiaoDong=王^小东');
  });

  it('switches ISO 8859 right halves by escape sequence (ISO 2022 IR 100 / IR 144)', () => {
    const value = bytes([0xc4], [ESC, 0x2d, 0x4c, 0xbb, 0xee], '\\', [0xfc]);
    expect(decodeText(value, ['ISO 2022 IR 100', 'ISO 2022 IR 144'], 'LO')).toBe('ÄЛю\\ü');
  });

  it('does not read the 0x5E byte of a two-byte character as a PN delimiter', () => {
    // JIS X 0208 'ま' is 0x24 0x5E.
    const value = bytes([ESC, 0x24, 0x42], '$^$@', [ESC, 0x28, 0x42], '^x');
    expect(decodeText(value, ['', 'ISO 2022 IR 87'], 'PN')).toBe('まだ^x');
  });

  it('returns G1 to value 1 at PN component delimiters only for PN', () => {
    const value = bytes([ESC, 0x2d, 0x4c, 0xbb], '^', [0xbb]);
    const scs = ['ISO 2022 IR 100', 'ISO 2022 IR 144'];
    expect(decodeText(value, scs, 'PN')).toBe('Л^»');
    expect(decodeText(value, scs, 'LO')).toBe('Л^Л');
  });

  it('returns G0 to ASCII at a line feed even without ESC ( B', () => {
    const value = bytes([ESC, 0x24, 0x42], '$^', [0x0a], 'x');
    expect(decodeText(value, ['', 'ISO 2022 IR 87'], 'LT')).toBe('ま\nx');
  });

  it('keeps backslash as text in LT', () => {
    expect(decodeText(bytes('a\\b'), ['ISO_IR 100'], 'LT')).toBe('a\\b');
  });

  it('decodes ISO_IR 192 as UTF-8', () => {
    expect(decodeText(new Uint8Array(Buffer.from('Wang^XiaoDong=王^小东', 'utf8')), ['ISO_IR 192'], 'PN')).toBe('Wang^XiaoDong=王^小东');
  });

  it('decodes GBK without splitting a trail byte 0x5C', () => {
    // '乗' in GBK is 0x81 0x5C: the 0x5C must not become a value delimiter.
    expect(decodeText(bytes([0x81, 0x5c]), ['GBK'], 'LO')).toBe('乗');
  });

  it('decodes ISO_IR 203 (ISO 8859-15) euro sign', () => {
    expect(decodeText(bytes([0xa4]), ['ISO_IR 203'], 'LO')).toBe('€');
  });

  it('decodes no Specific Character Set as latin1', () => {
    expect(decodeText(bytes('Doe^John', [0xe9]), [], 'PN')).toBe('Doe^Johné');
  });

  it('throws an Error naming an unknown term', () => {
    expect(() => decodeText(bytes('x'), ['ISO_IR 999'], 'LO')).toThrow(/ISO_IR 999/);
    expect(() => decodeText(bytes('x'), ['', 'ISO 2022 GBK'], 'LO')).toThrow(/ISO 2022 GBK/);
  });
});

describe('needsCharsetDecoding', () => {
  it('is false for single terms dcmjs maps', () => {
    for (const t of [[], [''], ['ISO_IR 100'], ['ISO_IR 192'], ['GB18030'], ['ISO_IR 13']]) {
      expect(needsCharsetDecoding(t)).toBe(false);
    }
  });

  it('is true for multi-valued sets, ISO 2022 terms and terms dcmjs lacks', () => {
    for (const t of [['', 'ISO 2022 IR 87'], ['ISO 2022 IR 100'], ['ISO_IR 203'], ['ISO_IR 999']]) {
      expect(needsCharsetDecoding(t)).toBe(true);
    }
  });
});
