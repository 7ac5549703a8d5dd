import { dictionaryVr, Tag, VALID_VRS } from './tags.js';

// Resolving the registry's VR choices ("US or SS", "OB or OW", "US or OW")
// for one element of a data set, so that every "vr" Cairn writes is one of
// the 34 of PS3.5 Table 6.2-1. An Explicit VR encoding states the VR; these
// rules apply where the encoding does not: Implicit VR Little Endian, and
// elements an explicit encoding sent as UN.

/** What an element's VR may depend on, from its data set and the data sets enclosing it. */
export interface VrContext {
  /** The element was encoded without a VR field (Implicit VR Little Endian, PS3.5 §A.1). */
  implicit: boolean;
  littleEndian: boolean;
  /** Pixel Representation (0028,0103) of the nearest data set that has one. */
  pixelRepresentation?: number;
  /** Bits Allocated (0028,0100) of the nearest data set that has one. */
  bitsAllocated?: number;
  /** Waveform Bits Allocated (5400,1004) of the same item (a Waveform Sequence item). */
  waveformBitsAllocated?: number;
  /** The first value of LUT Descriptor (0028,3002) of the same item: the number of LUT entries. */
  lutEntries?: number;
}

// PS3.3 C.10.9.1: Channel Minimum/Maximum Value, Waveform Padding Value and
// Waveform Data are OB or OW after Waveform Bits Allocated.
const WAVEFORM = new Set<string>([Tag.ChannelMinimumValue, Tag.ChannelMaximumValue, Tag.WaveformPaddingValue, Tag.WaveformData]);
// The descriptors of a LUT: their first and third values are unsigned
// whatever the VR (PS3.3 C.11.1.1.1, C.7.6.3.1.5); only the second (the first
// value mapped) follows Pixel Representation.
const LUT_DESCRIPTORS = new Set<string>([
  Tag.RedPaletteColorLookupTableDescriptor,
  Tag.GreenPaletteColorLookupTableDescriptor,
  Tag.BluePaletteColorLookupTableDescriptor,
  Tag.LUTDescriptor,
]);

/**
 * The VR an element shall have in DICOM JSON, given the VR the decoder
 * reported for it: that VR when the encoding stated it and it is valid,
 * else the registry's, with a choice resolved from the data set:
 * - "US or SS": SS when Pixel Representation is 1 (two's complement), else US
 *   (PS3.5 §A.1 and the attribute definitions of PS3.3 C.7.6.3, C.11).
 * - "OB or OW": OW in Implicit VR (PS3.5 §A.1 for Pixel, Overlay and Waveform
 *   Data); sent as UN in an explicit encoding, OW when more than 8 bits are
 *   allocated (PS3.5 §A.2; Waveform Bits Allocated for waveforms), else OB.
 * - "US or OW" (LUT Data): US when the LUT has a single entry, else OW, as the
 *   LUT's own VR would be for 16-bit entries (PS3.3 C.11.1.1.1).
 * - the directory offsets of a DICOMDIR ("up"): UL.
 * An unknown or private tag without a stated VR is UN.
 */
export function resolveVr(tag: string, reported: string, ctx: VrContext): string {
  // The common case, decided without a dictionary lookup: an explicit encoding stated a VR.
  if (!ctx.implicit && reported !== 'UN' && VALID_VRS.has(reported)) return reported;
  const registry = dictionaryVr(tag);
  const ambiguous = registry !== undefined && !VALID_VRS.has(registry);
  // A VR the encoding stated stands; UN only says the sender did not know it.
  if (VALID_VRS.has(reported) && !ambiguous) return reported;
  if (VALID_VRS.has(reported) && reported !== 'UN' && !ctx.implicit) return reported;
  switch (registry) {
    case 'xs':
      return ctx.pixelRepresentation === 1 ? 'SS' : 'US';
    case 'ox': {
      if (ctx.implicit) return 'OW';
      const bits = WAVEFORM.has(tag) ? ctx.waveformBitsAllocated : ctx.bitsAllocated;
      return bits !== undefined && bits <= 8 ? 'OB' : 'OW';
    }
    case 'lt':
      return ctx.lutEntries === 1 ? 'US' : 'OW';
    case 'up':
      return 'UL';
    default:
      return VALID_VRS.has(reported) ? reported : 'UN';
  }
}

const NUMERIC = new Set(['US', 'SS', 'UL']);

/**
 * The values of an element whose VR resolveVr() changed, in the form of the
 * new VR: binary bytes read as numbers for US, SS and UL, and numbers
 * re-read as signed for SS (a decoder without the VR reads "US or SS" as
 * US). Values of other VRs (OB, OW, UN: bytes) are returned as they are.
 */
export function valuesFor(tag: string, vr: string, values: unknown[], ctx: VrContext): unknown[] {
  if (!NUMERIC.has(vr)) return values;
  const numbers = values.flatMap((v) => (v instanceof ArrayBuffer || ArrayBuffer.isView(v) ? readNumbers(v, vr, ctx.littleEndian) : [v]));
  if (vr !== 'SS') return numbers;
  return numbers.map((v, i) => (typeof v === 'number' && v > 0x7fff && v <= 0xffff && !(LUT_DESCRIPTORS.has(tag) && i !== 1) ? v - 0x10000 : v));
}

function readNumbers(v: ArrayBuffer | ArrayBufferView, vr: string, le: boolean): number[] {
  const bytes = v instanceof ArrayBuffer ? Buffer.from(v) : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  const size = vr === 'UL' ? 4 : 2;
  const out: number[] = [];
  for (let i = 0; i + size <= bytes.length; i += size) {
    if (vr === 'UL') out.push(le ? bytes.readUInt32LE(i) : bytes.readUInt32BE(i));
    else out.push(le ? bytes.readUInt16LE(i) : bytes.readUInt16BE(i));
  }
  return out;
}

interface JsonAttr {
  vr: string;
  Value?: unknown[];
  InlineBinary?: string;
  BulkDataURI?: string;
}

/**
 * resolveVr() over DICOM JSON already made (stored metadata written before
 * Cairn resolved VRs), in place; true when anything changed. Values follow
 * their VR: InlineBinary becomes numbers for US, SS and UL, numbers are
 * re-read as signed for SS. A Value that cannot be a binary VR's (a decoder
 * without the VR left it) is dropped.
 */
export function resolveJsonVrs(json: Record<string, JsonAttr>, outer: VrContext): boolean {
  const first = (tag: string) => {
    const v = json[tag]?.Value?.[0];
    return typeof v === 'number' ? v : undefined;
  };
  const ctx: VrContext = {
    ...outer,
    pixelRepresentation: first(Tag.PixelRepresentation) ?? outer.pixelRepresentation,
    bitsAllocated: first(Tag.BitsAllocated) ?? outer.bitsAllocated,
    waveformBitsAllocated: first(Tag.WaveformBitsAllocated),
    lutEntries: first(Tag.LUTDescriptor),
  };
  let changed = false;
  for (const [tag, attr] of Object.entries(json)) {
    if (attr.vr === 'SQ') {
      for (const item of (attr.Value ?? []) as (Record<string, JsonAttr> | null)[]) if (item && resolveJsonVrs(item, ctx)) changed = true;
      continue;
    }
    const vr = resolveVr(tag, attr.vr, ctx);
    if (vr === attr.vr) continue;
    changed = true;
    attr.vr = vr;
    if (attr.BulkDataURI !== undefined) continue;
    if (NUMERIC.has(vr)) {
      const values = attr.InlineBinary !== undefined ? [Buffer.from(attr.InlineBinary, 'base64')] : (attr.Value ?? []);
      delete attr.InlineBinary;
      const numbers = valuesFor(tag, vr, values, ctx);
      if (numbers.length) attr.Value = numbers;
      else delete attr.Value;
    } else if (attr.Value !== undefined) delete attr.Value;
  }
  return changed;
}
