import dcmjs from 'dcmjs';

// What a bulk import needs to know about a file before it stores it: whether
// it is a Part-10 file at all, which SOP Instance it holds (to skip what is
// already stored without reading the whole file) and whether it is a
// DICOMDIR, whose Referenced File IDs name the files of its file-set.

/** PS3.4 Annex B.5 / PS3.10 §7.2: the SOP Class of a DICOMDIR (Media Storage Directory Storage). */
export const MEDIA_STORAGE_DIRECTORY = '1.2.840.10008.1.3.10';

/** The preamble and "DICM" of a Part-10 file (PS3.10 §7.1). */
export const PART10_PREFIX = 132;

/** How many leading bytes readFileMeta() looks at; the File Meta Information is almost always far shorter. */
export const FILE_META_HEAD = 16 * 1024;

export interface FileMeta {
  /** (0002,0002) Media Storage SOP Class UID. */
  sopClassUid?: string;
  /** (0002,0003) Media Storage SOP Instance UID. */
  sopInstanceUid?: string;
  /** (0002,0010) Transfer Syntax UID. */
  transferSyntaxUid?: string;
}

// PS3.5 §7.1.2: the VRs whose explicit length is 4 bytes after 2 reserved ones.
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

/**
 * The File Meta Information of a Part-10 file from its first bytes, or
 * undefined when they are not a Part-10 file (no "DICM" at byte 128). PS3.10
 * §7.1: group 0002 follows the prefix, always Explicit VR Little Endian.
 * Elements past the end of `head` are simply not returned.
 */
export function readFileMeta(head: Buffer): FileMeta | undefined {
  if (head.length < PART10_PREFIX || head.toString('latin1', 128, 132) !== 'DICM') return undefined;
  const meta: FileMeta = {};
  let pos = PART10_PREFIX;
  while (pos + 8 <= head.length && head.readUInt16LE(pos) === 0x0002) {
    const element = head.readUInt16LE(pos + 2);
    const vr = head.toString('latin1', pos + 4, pos + 6);
    let length: number;
    let start: number;
    if (LONG_VRS.has(vr)) {
      if (pos + 12 > head.length) break;
      length = head.readUInt32LE(pos + 8);
      start = pos + 12;
    } else {
      length = head.readUInt16LE(pos + 6);
      start = pos + 8;
    }
    if (length === 0xffffffff || start + length > head.length) break;
    const text = () => head.toString('latin1', start, start + length).replace(/[\0 ]+$/, '');
    if (element === 0x0002) meta.sopClassUid = text();
    else if (element === 0x0003) meta.sopInstanceUid = text();
    else if (element === 0x0010) meta.transferSyntaxUid = text();
    pos = start + length;
  }
  return meta;
}

/**
 * The files a DICOMDIR names: the Referenced File ID (0004,1500) of every
 * record of its Directory Record Sequence (0004,1220), each a list of path
 * components relative to the folder holding the DICOMDIR (PS3.3 F.3.2.2,
 * PS3.10 §8.2). Throws when the bytes are not a DICOMDIR.
 */
export function referencedFiles(dicomdir: Buffer): string[][] {
  const ab = dicomdir.buffer.slice(dicomdir.byteOffset, dicomdir.byteOffset + dicomdir.length) as ArrayBuffer;
  const parsed = dcmjs.data.DicomMessage.readFile(ab, {
    ignoreErrors: false,
    untilTag: null,
    includeUntilTagValue: false,
    noCopy: false,
    forceStoreRaw: false,
  });
  const records = parsed.dict['00041220'] as { Value?: Record<string, { Value?: unknown[] }>[] } | undefined;
  if (!records) throw new Error('no Directory Record Sequence (0004,1220)');
  const files: string[][] = [];
  for (const record of records.Value ?? []) {
    const id = record['00041500']?.Value;
    if (!id?.length) continue;
    // A single value may still carry backslashes when a writer did not split it.
    const parts = id.flatMap((v) => String(v).split('\\')).map((p) => p.trim());
    if (parts.every(Boolean)) files.push(parts);
  }
  return files;
}
