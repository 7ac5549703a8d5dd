import { corrupt } from './limits.js';

// Image sizes read from a codestream's own header, so a frame whose
// codestream declares more than its data set (or than the limits) is refused
// before a codec allocates for it.

export interface CodestreamHeader {
  width: number;
  height: number;
  components: number;
  /** Bits per sample (the first component's). */
  precision: number;
  /** JPEG: the first component's horizontal and vertical sampling factors (ISO 10918-1 §B.2.2). */
  sampling?: [number, number];
  /** JPEG 2000: the first component is signed (ISO 15444-1 §A.5.1 Ssiz). */
  signed?: boolean;
}

/** ISO 10918-1 §B.2.2 / ISO 14495-1 §C.2.2: the frame header (SOFn, or SOF55 for JPEG-LS). */
export function readJpegHeader(b: Uint8Array): CodestreamHeader {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) throw corrupt('the frame does not start with a JPEG start-of-image marker');
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) throw corrupt(`the JPEG stream has no marker where one is due (byte ${i})`);
    const marker = b[i + 1];
    if (marker === 0xff) {
      i++;
      continue;
    }
    const len = (b[i + 2] << 8) | b[i + 3];
    const isSof = (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) || marker === 0xf7;
    if (isSof) {
      if (i + 10 > b.length) break;
      const header: CodestreamHeader = { precision: b[i + 4], height: (b[i + 5] << 8) | b[i + 6], width: (b[i + 7] << 8) | b[i + 8], components: b[i + 9] };
      if (i + 12 <= b.length) header.sampling = [b[i + 11] >> 4, b[i + 11] & 15];
      return header;
    }
    if (marker === 0xda || marker === 0xd9) break;
    i += 2 + len;
  }
  throw corrupt('the JPEG stream ends before its frame header');
}

/** ISO 15444-1 §A.5.1: the SIZ segment after SOC; a JP2 file (§I.5.3) is searched for its contiguous codestream box. */
export function readJ2kHeader(b: Uint8Array): CodestreamHeader {
  const cs = j2kCodestream(b);
  if (cs.length < 4 || cs[0] !== 0xff || cs[1] !== 0x4f || cs[2] !== 0xff || cs[3] !== 0x51)
    throw corrupt('the frame does not start with a JPEG 2000 codestream (SOC, SIZ)');
  if (cs.length < 43) throw corrupt('the JPEG 2000 codestream ends inside its SIZ segment');
  const v = new DataView(cs.buffer, cs.byteOffset, cs.byteLength);
  const xsiz = v.getUint32(8);
  const ysiz = v.getUint32(12);
  const xo = v.getUint32(16);
  const yo = v.getUint32(20);
  const components = v.getUint16(40);
  const ssiz = cs[42];
  return { width: xsiz - xo, height: ysiz - yo, components, precision: (ssiz & 0x7f) + 1, signed: (ssiz & 0x80) !== 0 };
}

/** The codestream of a J2K frame: the frame itself, or the 'jp2c' box of a JP2 file. */
export function j2kCodestream(b: Uint8Array): Uint8Array {
  if (b.length >= 12 && b[4] === 0x6a && b[5] === 0x50 && b[6] === 0x20 && b[7] === 0x20) {
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    let i = 0;
    while (i + 8 <= b.length) {
      let len = v.getUint32(i);
      const type = String.fromCharCode(b[i + 4], b[i + 5], b[i + 6], b[i + 7]);
      let head = 8;
      if (len === 1 && i + 16 <= b.length) {
        len = Number(v.getBigUint64(i + 8));
        head = 16;
      }
      if (type === 'jp2c') return b.subarray(i + head, len === 0 ? b.length : Math.min(b.length, i + len));
      if (len < head) break;
      i += len;
    }
    throw corrupt('the JP2 file has no codestream box');
  }
  return b;
}

/** ISO 15444-1 §A.6.1: whether the COD segment turns the multiple component transform on. */
export function j2kUsesMct(cs: Uint8Array): boolean {
  let i = 2;
  while (i + 4 <= cs.length) {
    if (cs[i] !== 0xff) return false;
    const marker = cs[i + 1];
    const len = (cs[i + 2] << 8) | cs[i + 3];
    if (marker === 0x52) return i + 8 < cs.length && cs[i + 8] !== 0;
    if (marker === 0x90 || marker === 0x93) return false;
    i += 2 + len;
  }
  return false;
}
