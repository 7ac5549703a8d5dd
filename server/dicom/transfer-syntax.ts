// The transfer syntaxes Cairn knows (PS3.5 Table A-1, PS3.6 Table A-1), and
// how each one's pixel data is sent by DICOMweb (PS3.18 §8.7.3.5, Table
// 8.7.3-5). Every other list of transfer syntax UIDs in the server derives
// from this table.

export interface TransferSyntax {
  uid: string;
  name: string;
  /** Pixel data in fragments (PS3.5 §A.4) rather than native (PS3.5 §8.1.1). */
  encapsulated: boolean;
  explicitVr: boolean;
  littleEndian: boolean;
  /** The whole data set after the file meta information is deflated (PS3.5 §A.5). */
  deflated: boolean;
  /** Pixel data in this syntax may have lost information to compression (PS3.5 §8.2). */
  lossy: boolean;
  /** PS3.18 Table 8.7.3-5: the media type of frames and pixel bulk data in this syntax. */
  pixelMediaType: string;
  /**
   * The transfer-syntax parameter sent with frames and pixel bulk data
   * (PS3.18 §8.7.3.5.2). Little-endian native pixel data is labelled
   * Explicit VR Little Endian: its bytes are the same in both little-endian
   * native syntaxes.
   */
  pixelLabel: string;
  /**
   * Cairn can store instances in this syntax and send them as stored. A
   * deflated data set cannot be read for indexing, so it is refused at STOW.
   */
  servedAsStored: boolean;
  /** Which of Cairn's pixel codecs (server/pixels/) reads frames in this syntax; absent when none does. */
  codec?: PixelCodecName;
}

/**
 * The codec families of server/pixels/: native little- and big-endian
 * samples (PS3.5 §8.1.1), RLE (PS3.5 Annex G), JPEG processes 1, 2 and 4
 * (ISO 10918-1), JPEG lossless process 14, JPEG-LS (ISO 14495-1), JPEG 2000
 * (ISO 15444-1) and High-Throughput JPEG 2000 (ISO 15444-15).
 */
export type PixelCodecName = 'native' | 'native-be' | 'rle' | 'jpeg' | 'jpeg-lossless' | 'jpeg-ls' | 'j2k' | 'htj2k';

export const IMPLICIT_VR_LE = '1.2.840.10008.1.2';
export const EXPLICIT_VR_LE = '1.2.840.10008.1.2.1';
export const EXPLICIT_VR_BE = '1.2.840.10008.1.2.2';
export const DEFLATED_EXPLICIT_VR_LE = '1.2.840.10008.1.2.1.99';
export const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
export const JPEG_LS_LOSSLESS = '1.2.840.10008.1.2.4.80';
export const J2K_LOSSLESS = '1.2.840.10008.1.2.4.90';
export const HTJ2K_LOSSLESS = '1.2.840.10008.1.2.4.201';
export const RLE_LOSSLESS = '1.2.840.10008.1.2.5';

const OCTETS = 'application/octet-stream';

type Row = [uid: string, name: string, pixelMediaType: string, flags?: { native?: true; implicit?: true; bigEndian?: true; deflated?: true; lossy?: true }];

const ROWS: Row[] = [
  [IMPLICIT_VR_LE, 'Implicit VR Little Endian', OCTETS, { native: true, implicit: true }],
  [EXPLICIT_VR_LE, 'Explicit VR Little Endian', OCTETS, { native: true }],
  ['1.2.840.10008.1.2.1.98', 'Encapsulated Uncompressed Explicit VR Little Endian', OCTETS],
  ['1.2.840.10008.1.2.1.99', 'Deflated Explicit VR Little Endian', OCTETS, { native: true, deflated: true }],
  [EXPLICIT_VR_BE, 'Explicit VR Big Endian', OCTETS, { native: true, bigEndian: true }],
  ['1.2.840.10008.1.2.4.50', 'JPEG Baseline (Process 1)', 'image/jpeg', { lossy: true }],
  ['1.2.840.10008.1.2.4.51', 'JPEG Extended (Process 2 & 4)', 'image/jpeg', { lossy: true }],
  ['1.2.840.10008.1.2.4.57', 'JPEG Lossless, Non-Hierarchical (Process 14)', 'image/jpeg'],
  ['1.2.840.10008.1.2.4.70', 'JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])', 'image/jpeg'],
  ['1.2.840.10008.1.2.4.80', 'JPEG-LS Lossless', 'image/jls'],
  ['1.2.840.10008.1.2.4.81', 'JPEG-LS Lossy (Near-Lossless)', 'image/jls', { lossy: true }],
  ['1.2.840.10008.1.2.4.90', 'JPEG 2000 (Lossless Only)', 'image/jp2'],
  ['1.2.840.10008.1.2.4.91', 'JPEG 2000', 'image/jp2', { lossy: true }],
  ['1.2.840.10008.1.2.4.92', 'JPEG 2000 Part 2 Multi-component (Lossless Only)', 'image/jpx'],
  ['1.2.840.10008.1.2.4.93', 'JPEG 2000 Part 2 Multi-component', 'image/jpx', { lossy: true }],
  // JPIP Referenced: the pixel data is at a JPIP provider, not in the instance (PS3.5 §A.6, §A.7).
  ['1.2.840.10008.1.2.4.94', 'JPIP Referenced', OCTETS],
  ['1.2.840.10008.1.2.4.95', 'JPIP Referenced Deflate', OCTETS, { deflated: true }],
  ['1.2.840.10008.1.2.4.100', 'MPEG2 Main Profile / Main Level', 'video/mpeg', { lossy: true }],
  ['1.2.840.10008.1.2.4.101', 'MPEG2 Main Profile / High Level', 'video/mpeg', { lossy: true }],
  ['1.2.840.10008.1.2.4.102', 'MPEG-4 AVC/H.264 High Profile / Level 4.1', 'video/mp4', { lossy: true }],
  ['1.2.840.10008.1.2.4.103', 'MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1', 'video/mp4', { lossy: true }],
  ['1.2.840.10008.1.2.4.104', 'MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video', 'video/mp4', { lossy: true }],
  ['1.2.840.10008.1.2.4.105', 'MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video', 'video/mp4', { lossy: true }],
  ['1.2.840.10008.1.2.4.106', 'MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2', 'video/mp4', { lossy: true }],
  ['1.2.840.10008.1.2.4.107', 'HEVC/H.265 Main Profile / Level 5.1', 'video/H265', { lossy: true }],
  ['1.2.840.10008.1.2.4.108', 'HEVC/H.265 Main 10 Profile / Level 5.1', 'video/H265', { lossy: true }],
  ['1.2.840.10008.1.2.4.110', 'JPEG XL Lossless', 'image/jxl'],
  ['1.2.840.10008.1.2.4.111', 'JPEG XL JPEG Recompression', 'image/jxl', { lossy: true }],
  ['1.2.840.10008.1.2.4.112', 'JPEG XL', 'image/jxl', { lossy: true }],
  ['1.2.840.10008.1.2.4.201', 'High-Throughput JPEG 2000 (Lossless Only)', 'image/jphc'],
  ['1.2.840.10008.1.2.4.202', 'High-Throughput JPEG 2000 with RPCL Options (Lossless Only)', 'image/jphc'],
  ['1.2.840.10008.1.2.4.203', 'High-Throughput JPEG 2000', 'image/jphc', { lossy: true }],
  ['1.2.840.10008.1.2.4.204', 'JPIP HTJ2K Referenced', OCTETS],
  ['1.2.840.10008.1.2.4.205', 'JPIP HTJ2K Referenced Deflate', OCTETS, { deflated: true }],
  ['1.2.840.10008.1.2.5', 'RLE Lossless', 'image/dicom-rle'],
];

/**
 * The syntaxes whose frames server/pixels/ decodes, and with which codec.
 * Encapsulated Uncompressed (PS3.5 §A.4.11) holds native little-endian
 * frames in fragments; a deflated data set's frames are native once inflated.
 * JPEG 2000 Part 2 multi-component transforms have no codec here.
 */
const CODECS: Readonly<Record<string, PixelCodecName>> = {
  [IMPLICIT_VR_LE]: 'native',
  [EXPLICIT_VR_LE]: 'native',
  '1.2.840.10008.1.2.1.98': 'native',
  [DEFLATED_EXPLICIT_VR_LE]: 'native',
  [EXPLICIT_VR_BE]: 'native-be',
  [JPEG_BASELINE]: 'jpeg',
  '1.2.840.10008.1.2.4.51': 'jpeg',
  '1.2.840.10008.1.2.4.57': 'jpeg-lossless',
  '1.2.840.10008.1.2.4.70': 'jpeg-lossless',
  [JPEG_LS_LOSSLESS]: 'jpeg-ls',
  '1.2.840.10008.1.2.4.81': 'jpeg-ls',
  [J2K_LOSSLESS]: 'j2k',
  '1.2.840.10008.1.2.4.91': 'j2k',
  [HTJ2K_LOSSLESS]: 'htj2k',
  '1.2.840.10008.1.2.4.202': 'htj2k',
  '1.2.840.10008.1.2.4.203': 'htj2k',
  [RLE_LOSSLESS]: 'rle',
};

function entry([uid, name, pixelMediaType, f = {}]: Row): TransferSyntax {
  return {
    uid,
    name,
    encapsulated: !f.native,
    explicitVr: !f.implicit,
    littleEndian: !f.bigEndian,
    deflated: !!f.deflated,
    lossy: !!f.lossy,
    pixelMediaType,
    pixelLabel: f.native && !f.bigEndian ? EXPLICIT_VR_LE : uid,
    servedAsStored: !f.deflated,
    ...(CODECS[uid] ? { codec: CODECS[uid] } : {}),
  };
}

/** Every transfer syntax Cairn knows, by UID. */
export const TRANSFER_SYNTAXES: ReadonlyMap<string, TransferSyntax> = new Map(ROWS.map((r) => [r[0], Object.freeze(entry(r))]));

/**
 * The transfer syntax of `uid`. One Cairn does not know (a private or newer
 * one) is read as Explicit VR Little Endian with encapsulated pixel data,
 * which is what PS3.5 §A.4 asks of every compressed syntax, and its frames
 * are sent as stored under application/octet-stream.
 */
export function transferSyntax(uid: string): TransferSyntax {
  return TRANSFER_SYNTAXES.get(uid) ?? unknown(uid);
}

function unknown(uid: string): TransferSyntax {
  return {
    uid,
    name: uid,
    encapsulated: true,
    explicitVr: true,
    littleEndian: true,
    deflated: false,
    lossy: false,
    pixelMediaType: OCTETS,
    pixelLabel: uid,
    servedAsStored: true,
  };
}
