import { parseMediaType, splitOutsideQuotes, type MediaType } from './multipart.js';

export interface Acceptable {
  /** multipart/related when the client asked for a multipart payload. */
  multipart: boolean;
  /** The media type of the parts (or of the body when not multipart); '*\/*' when any. */
  type: string;
  /** The transfer-syntax parameter, when given ('*' accepts any). */
  transferSyntax?: string;
  q: number;
}

/**
 * Parses an Accept header into acceptable media types by descending q
 * (RFC 9110 §12.5.1, PS3.18 §8.7.5). A missing header accepts anything.
 */
export function parseAccept(header: string | undefined): Acceptable[] {
  if (!header || !header.trim()) return [{ multipart: true, type: '*/*', q: 1 }];
  const out: Acceptable[] = [];
  for (const raw of splitOutsideQuotes(header, ',')) {
    if (!raw.trim()) continue;
    const mt: MediaType = parseMediaType(raw);
    const q = mt.params.q !== undefined ? Number(mt.params.q) : 1;
    if (!(q > 0)) continue;
    if (mt.type === 'multipart/related') {
      out.push({ multipart: true, type: (mt.params.type ?? '*/*').toLowerCase(), transferSyntax: mt.params['transfer-syntax'], q });
    } else if (mt.type === '*/*' || mt.type === 'multipart/*') {
      out.push({ multipart: true, type: '*/*', transferSyntax: mt.params['transfer-syntax'], q });
    } else {
      out.push({ multipart: false, type: mt.type, transferSyntax: mt.params['transfer-syntax'], q });
    }
  }
  return out.sort((a, b) => b.q - a.q);
}

/** Does an acceptable entry's type cover `type`? */
export function typeMatches(accepted: string, type: string): boolean {
  if (accepted === '*/*' || accepted === type) return true;
  return accepted.endsWith('/*') && type.startsWith(accepted.slice(0, -1));
}

// PS3.18 §8.7.3.5 Table 8.7.3-5 and §8.7.4: media types of compressed pixel data.
const PIXEL_MEDIA: [RegExp, string][] = [
  [/^1\.2\.840\.10008\.1\.2\.4\.(50|51|57|70)$/, 'image/jpeg'],
  [/^1\.2\.840\.10008\.1\.2\.4\.(80|81)$/, 'image/jls'],
  [/^1\.2\.840\.10008\.1\.2\.4\.(90|91)$/, 'image/jp2'],
  [/^1\.2\.840\.10008\.1\.2\.4\.(92|93)$/, 'image/jpx'],
  [/^1\.2\.840\.10008\.1\.2\.4\.(201|202|203)$/, 'image/jphc'],
  [/^1\.2\.840\.10008\.1\.2\.4\.(110|111|112)$/, 'image/jxl'],
  [/^1\.2\.840\.10008\.1\.2\.5$/, 'image/dicom-rle'],
  [/^1\.2\.840\.10008\.1\.2\.4\.(100|101)$/, 'video/mpeg'],
  [/^1\.2\.840\.10008\.1\.2\.4\.(102|103|104|105|106)$/, 'video/mp4'],
  [/^1\.2\.840\.10008\.1\.2\.4\.(107|108)$/, 'video/H265'],
];

export const NATIVE_SYNTAXES = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.2']);
export const EXPLICIT_VR_LE = '1.2.840.10008.1.2.1';

/** The media type of frames or pixel bulk data stored in `ts`. */
export function pixelMediaType(ts: string): string {
  if (NATIVE_SYNTAXES.has(ts)) return 'application/octet-stream';
  for (const [re, type] of PIXEL_MEDIA) if (re.test(ts)) return type;
  return 'application/octet-stream';
}

/**
 * Chooses how to send pixel data stored in `ts` without transcoding, or null
 * (→ 406). Native pixel data is sent as application/octet-stream (labelled
 * Explicit VR Little Endian; little-endian native bytes are the same in both
 * little-endian syntaxes). Compressed data goes as stored: under its own
 * media type, or as application/octet-stream when the client accepts any
 * transfer syntax (`transfer-syntax=*`, as OHIF asks for frames).
 */
export function choosePixelMedia(accepts: Acceptable[], ts: string): { multipart: boolean; contentType: string } | null {
  const native = NATIVE_SYNTAXES.has(ts);
  const own = pixelMediaType(ts);
  const label = native && ts !== '1.2.840.10008.1.2.2' ? EXPLICIT_VR_LE : ts;
  for (const a of accepts) {
    const tsOk = a.transferSyntax === undefined || a.transferSyntax === '*' || a.transferSyntax === label || a.transferSyntax === ts;
    if (!tsOk) continue;
    if (typeMatches(a.type, own)) return { multipart: a.multipart, contentType: `${own}; transfer-syntax=${label}` };
    if (!native && a.type === 'application/octet-stream' && a.transferSyntax === '*') {
      return { multipart: a.multipart, contentType: `application/octet-stream; transfer-syntax=${label}` };
    }
  }
  return null;
}

/**
 * Whether instances stored in `ts` can be sent as application/dicom for this
 * Accept. Instances are sent as stored: with `transfer-syntax=*`, with the
 * stored syntax named, or with no transfer-syntax parameter (Cairn does not
 * transcode; see CONFORMANCE.md). A named syntax other than the stored one is
 * not acceptable.
 */
export function acceptsDicom(accepts: Acceptable[], ts: string): Acceptable | null {
  for (const a of accepts) {
    if (!typeMatches(a.type, 'application/dicom')) continue;
    if (a.transferSyntax === undefined || a.transferSyntax === '*' || a.transferSyntax === ts) return a;
  }
  return null;
}
