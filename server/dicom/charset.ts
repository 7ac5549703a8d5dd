/**
 * Decoding of DICOM text values (SH, LO, ST, LT, UT, UC, PN) per the
 * Specific Character Set (0008,0005): PS3.5 §6.1, §6.1.2.5 (ISO 2022 code
 * extensions) and the examples of Annexes H (Japanese), I (Korean) and
 * J/K (Unicode, Chinese). Defined Terms come from PS3.3 C.12.1.1.2.
 */
import iconv from 'iconv-lite';

/** A graphic character set that can be designated to G0 or G1. */
interface GraphicSet {
  /** Bytes per character (94^n sets are n-byte). */
  width: 1 | 2;
  /** iconv-lite codec; 'kana' is JIS X 0201 katakana, handled here. */
  codec: string;
  /** Transform of one character's bytes into the codec's encoding. */
  map?: (b: number[]) => number[];
}

const ASCII: GraphicSet = { width: 1, codec: 'latin1' };
const latinHalf = (codec: string): GraphicSet => ({ width: 1, codec });

/**
 * Escape sequences (bytes after ESC) of PS3.3 Tables C.12-3/C.12-4, with the
 * element (G0 or G1) they designate to. The JIS X 0208/0212 G0 bytes are
 * shifted into their EUC-JP form (GR, plus SS3 0x8F for JIS X 0212) since
 * iconv-lite has no ISO 2022 state machine; KS X 1001 and GB 2312 in G1 are
 * already byte-identical to EUC-KR and EUC-CN.
 */
const ESCAPES: Record<string, { g: 0 | 1; set: GraphicSet }> = {
  '(B': { g: 0, set: ASCII },
  // JIS X 0201 Romaji differs from ASCII only at 0x5C (yen) and 0x7E
  // (overline); DICOM keeps 0x5C as the value delimiter (PS3.5 §6.4),
  // so it is read as ASCII, as pydicom and dcmjs do.
  '(J': { g: 0, set: ASCII },
  ')I': { g: 1, set: { width: 1, codec: 'kana' } },
  $B: { g: 0, set: { width: 2, codec: 'eucjp', map: (b) => b.map((x) => x | 0x80) } },
  '$(D': { g: 0, set: { width: 2, codec: 'eucjp', map: (b) => [0x8f, ...b.map((x) => x | 0x80)] } },
  '$)C': { g: 1, set: { width: 2, codec: 'euckr' } },
  '$)A': { g: 1, set: { width: 2, codec: 'gb2312' } },
  '-A': { g: 1, set: latinHalf('iso88591') },
  '-B': { g: 1, set: latinHalf('iso88592') },
  '-C': { g: 1, set: latinHalf('iso88593') },
  '-D': { g: 1, set: latinHalf('iso88594') },
  '-L': { g: 1, set: latinHalf('iso88595') },
  '-G': { g: 1, set: latinHalf('iso88596') },
  '-F': { g: 1, set: latinHalf('iso88597') },
  '-H': { g: 1, set: latinHalf('iso88598') },
  '-M': { g: 1, set: latinHalf('iso88599') },
  '-b': { g: 1, set: latinHalf('iso885915') },
  '-T': { g: 1, set: latinHalf('tis620') },
};

/** ISO-IR registration number -> escape sequences its term designates. */
const IR: Record<string, string[]> = {
  '6': ['(B'],
  '13': ['(J', ')I'],
  '87': ['$B'],
  '159': ['$(D'],
  '149': ['$)C'],
  '58': ['$)A'],
  '100': ['(B', '-A'],
  '101': ['(B', '-B'],
  '109': ['(B', '-C'],
  '110': ['(B', '-D'],
  '144': ['(B', '-L'],
  '127': ['(B', '-G'],
  '126': ['(B', '-F'],
  '138': ['(B', '-H'],
  '148': ['(B', '-M'],
  '203': ['(B', '-b'],
  '166': ['(B', '-T'],
};
/** Terms without code extensions that are also multi-byte (PS3.3 Table C.12-5). */
const WHOLE: Record<string, string> = { 'ISO_IR 192': 'utf8', GB18030: 'gb18030', GBK: 'gbk' };
/** Single-byte terms without extensions (Table C.12-2); the rest are ISO 2022 only. */
const SINGLE_IR = new Set(['6', '13', '100', '101', '109', '110', '144', '127', '126', '138', '148', '203', '166']);

/**
 * Terms dcmjs (0.52, `constants.encodingMapping`) maps to a TextDecoder, after
 * its own normalisation (`[_ ]` -> '-', lower case). Its ISO 2022 entries are
 * not listed: it only ever applies value 1 and ignores escape sequences.
 */
const DCMJS_SINGLE = new Set([
  '',
  'iso-ir-6',
  'iso-ir-13',
  'iso-ir-100',
  'iso-ir-101',
  'iso-ir-109',
  'iso-ir-110',
  'iso-ir-126',
  'iso-ir-127',
  'iso-ir-138',
  'iso-ir-144',
  'iso-ir-148',
  'iso-ir-166',
  'iso-ir-192',
  'gb18030',
  'gbk',
]);

const terms = (scs: readonly string[]): string[] => scs.map((t) => t.trim());

export function needsCharsetDecoding(specificCharacterSet: readonly string[]): boolean {
  const t = terms(specificCharacterSet);
  if (t.length > 1) return true;
  if (t.length === 0) return false;
  const term = t[0]!;
  return term.startsWith('ISO 2022') || !DCMJS_SINGLE.has(term.replace(/[_ ]/g, '-').toLowerCase());
}

/** Escape sequences a term designates, or throws naming an unknown term. */
function designations(term: string): string[] {
  // PS3.3 C.12.1.1.2: an empty value 1 with code extensions means ISO 2022 IR 6.
  if (term === '') return IR['6']!;
  const m = /^(ISO 2022 IR|ISO_IR) (\d+)$/.exec(term);
  const seqs = m && IR[m[2]!];
  if (!m || !seqs || (m[1] === 'ISO_IR' && !SINGLE_IR.has(m[2]!))) {
    throw new Error(`Unsupported Specific Character Set term '${term}'`);
  }
  return seqs;
}

export function decodeText(bytes: Uint8Array, specificCharacterSet: readonly string[], vr: string): string {
  const t = terms(specificCharacterSet);
  const first = t[0] ?? '';
  // UTF-8, GB18030 and GBK permit no code extensions (PS3.3 C.12.1.1.2), and
  // their trail bytes can equal 0x5C, so the whole value is decoded at once.
  // Further values are ignored, as pydicom does.
  const whole = WHOLE[first];
  if (whole) return iconv.decode(bytes, whole);
  t.slice(1).forEach((term) => {
    if (WHOLE[term]) throw new Error(`Specific Character Set term '${term}' does not allow code extensions`);
  });
  const initial = designations(first);
  t.slice(1).forEach(designations); // reject unknown terms even if unused
  // Code extensions are only defined for ISO 2022 terms (PS3.5 §6.1.2.5);
  // with a single-valued ISO_IR term ESC is just a control character.
  const extensions = t.length > 1 || first.startsWith('ISO 2022');
  return decodeIso2022(bytes, initial, extensions, vr);
}

function decodeIso2022(bytes: Uint8Array, initial: string[], extensions: boolean, vr: string): string {
  let init0: GraphicSet = ASCII;
  let init1: GraphicSet | undefined;
  for (const seq of initial) {
    const d = ESCAPES[seq]!;
    // A two-byte G0 set (IR 87/159) is not a legal value 1; keep ASCII then
    // rather than reading plain ASCII names as kanji.
    if (d.g === 1) init1 = d.set;
    else if (d.set.width === 1) init0 = d.set;
  }
  // Without code extensions every single-byte set here is ASCII-compatible,
  // so one codec covers the whole value (JIS X 0201 katakana aside).
  if (!extensions && init1?.codec !== 'kana') return iconv.decode(bytes, init1?.codec ?? 'latin1');
  let g0 = init0;
  let g1 = init1;
  // PS3.5 §6.1.2.5.3: value 1's sets are active again before CR, LF, FF and
  // other controls, before '\' between values, and in PN before '^' and '='.
  // Readers therefore reset after those. ST, LT and UT are single-valued and
  // may contain '\' as text (PS3.5 §6.2).
  const delimiters = new Set<number>();
  if (!['ST', 'LT', 'UT', 'UR'].includes(vr)) delimiters.add(0x5c);
  if (vr === 'PN') for (const d of [0x5e, 0x3d]) delimiters.add(d);

  let out = '';
  let run: number[] = [];
  let runCodec = 'latin1';
  const emit = (codec: string, chunk: number[]): void => {
    if (codec !== runCodec) flush();
    runCodec = codec;
    run.push(...chunk);
  };
  const flush = (): void => {
    if (run.length === 0) return;
    out +=
      runCodec === 'kana'
        ? run.map((b) => String.fromCharCode(b >= 0xa1 && b <= 0xdf ? 0xff61 + b - 0xa1 : b)).join('')
        : iconv.decode(Uint8Array.from(run), runCodec);
    run = [];
  };
  const put = (set: GraphicSet, chunk: number[]): void => emit(set.codec, set.map ? set.map(chunk) : chunk);

  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b === 0x1b && extensions) {
      // ESC, intermediates 0x20-0x2F, final 0x30-0x7E (ISO 2022 §13.1).
      let j = i + 1;
      while (j < bytes.length && bytes[j]! >= 0x20 && bytes[j]! <= 0x2f) j++;
      const seq = String.fromCharCode(...bytes.subarray(i + 1, j + 1));
      const d = ESCAPES[seq];
      if (!d) {
        const hex = Array.from(bytes.subarray(i, j + 1), (x) => x.toString(16).padStart(2, '0')).join(' ');
        throw new Error(`Unsupported ISO 2022 escape sequence ${hex} in ${vr} value`);
      }
      if (d.g === 0) g0 = d.set;
      else g1 = d.set;
      i = j + 1;
    } else if (b < 0x21 || b === 0x7f) {
      // Controls and SPACE are the same in every G0 set; controls end the
      // extended state (PS3.5 §6.1.2.5.3).
      emit('latin1', [b]);
      i++;
      if (b < 0x20) [g0, g1] = [init0, init1 ?? g1];
    } else if (b < 0x80) {
      const n = g0.width;
      put(g0, Array.from(bytes.subarray(i, i + n)));
      i += n;
      if (n === 1 && delimiters.has(b)) {
        // Reset G1 only if value 1 designates one: a G1 set such as KS X 1001
        // whose writer did not repeat ESC $ ) C (seen in the wild) would
        // otherwise fall to latin1 where no G1 is legal anyway.
        [g0, g1] = [init0, init1 ?? g1];
      }
    } else if (g1 && b >= 0xa0) {
      const n = g1.width;
      put(g1, Array.from(bytes.subarray(i, i + n)));
      i += n;
    } else {
      // No G1 designated (or a C1 byte): invalid, read as latin1 for robustness.
      emit('latin1', [b]);
      i++;
    }
  }
  flush();
  return out;
}
