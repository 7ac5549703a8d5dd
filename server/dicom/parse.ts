import dcmjs from 'dcmjs';
import { mapFrames, type FrameMap } from './frames.js';
import { firstNumber, firstString, toDicomJson, type DicomJson } from './json.js';
import { LimitError, NotDicomError, scanPart10, TooLargeError, UnsupportedError, type BulkElement, type ScanOptions, type ScanResult } from './scan.js';
import { Tag } from './tags.js';
import { TruncatedError } from './byte-reader.js';
import { isValidUid } from './uid.js';

// The only place that calls dcmjs on stored data (DESIGN.md house style 6).
dcmjs.log.setLevel('error');
// dcmjs reports each VR choice ("US or SS", …) it reads as US, OW or UN as an
// error on stdout; Cairn resolves those itself (vr.ts), so the lines are noise.
dcmjs.log.getLogger('validation.dcmjs').setLevel('silent');

export interface ParsedInstance {
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  sopClassUid: string;
  transferSyntaxUid: string;
  /** The data set as DICOM JSON without bulk data elements (those are in `bulk`). */
  dataset: DicomJson;
  bulk: Record<string, BulkElement>;
  frames: FrameMap | null;
}

export type ParseFailure = {
  /** 'limit': the data set goes past MAX_SEQUENCE_DEPTH or MAX_DATA_ELEMENTS; refused as not understood (0xC000). */
  kind: 'not-dicom' | 'truncated' | 'unsupported' | 'too-large' | 'limit' | 'invalid';
  message: string;
  /** The instance's UIDs, when they could be read, for the failure report. */
  sopInstanceUid?: string;
  sopClassUid?: string;
};

export class ParseError extends Error {
  constructor(readonly failure: ParseFailure) {
    super(failure.message);
  }
}

/** Reads a Part-10 stream to its end and returns what the index keeps of it. */
export async function parseInstance(source: AsyncIterable<Buffer>, opts: ScanOptions): Promise<ParsedInstance> {
  let scan: ScanResult;
  try {
    scan = await scanPart10(source, opts);
  } catch (err) {
    if (err instanceof NotDicomError) throw new ParseError({ kind: 'not-dicom', message: err.message });
    if (err instanceof TruncatedError) throw new ParseError({ kind: 'truncated', message: `truncated DICOM file: ${err.message}` });
    if (err instanceof UnsupportedError) throw new ParseError({ kind: 'unsupported', message: err.message });
    if (err instanceof TooLargeError) throw new ParseError({ kind: 'too-large', message: err.message });
    if (err instanceof LimitError) throw new ParseError({ kind: 'limit', message: err.message });
    throw err;
  }
  let dict: ReturnType<typeof dcmjs.data.DicomMessage.readFile>;
  try {
    const ab = scan.header.buffer.slice(scan.header.byteOffset, scan.header.byteOffset + scan.header.length);
    dict = dcmjs.data.DicomMessage.readFile(ab, { ignoreErrors: false, untilTag: null, includeUntilTagValue: false, noCopy: false, forceStoreRaw: false });
  } catch (err) {
    throw new ParseError({ kind: 'not-dicom', message: `the DICOM header cannot be parsed: ${(err as Error).message}` });
  }
  const dataset = toDicomJson(dict.dict, { implicit: scan.implicitVr, littleEndian: scan.littleEndian });
  const studyUid = firstString(dataset, Tag.StudyInstanceUID) ?? '';
  const seriesUid = firstString(dataset, Tag.SeriesInstanceUID) ?? '';
  const sopInstanceUid = firstString(dataset, Tag.SOPInstanceUID) ?? '';
  const sopClassUid = firstString(dataset, Tag.SOPClassUID) ?? '';
  const missing = [
    ['StudyInstanceUID (0020,000D)', studyUid],
    ['SeriesInstanceUID (0020,000E)', seriesUid],
    ['SOPInstanceUID (0008,0018)', sopInstanceUid],
    ['SOPClassUID (0008,0016)', sopClassUid],
  ].filter(([, v]) => !v || !isValidUid(v));
  if (missing.length) {
    const known = (uid: string) => (uid && isValidUid(uid) ? uid : undefined);
    throw new ParseError({
      kind: 'invalid',
      message: `missing or invalid ${missing.map(([n]) => n).join(', ')}`,
      sopInstanceUid: known(sopInstanceUid),
      sopClassUid: known(sopClassUid),
    });
  }
  // dcmjs reports every decoded data set as ISO_IR 192, and Cairn transcodes
  // ISO 2022 text to UTF-8 before dcmjs sees it; the JSON is UTF-8 either way.
  // PS3.18 Annex F.2 (Note): Specific Character Set in DICOM JSON reflects the
  // encoding of the source data set, so the stored values are put back.
  if (scan.specificCharacterSet) dataset[Tag.SpecificCharacterSet] = { vr: 'CS', Value: scan.specificCharacterSet.map((v) => v || null) };
  dataset[Tag.TransferSyntaxUID] = { vr: 'UI', Value: [scan.transferSyntaxUid] };
  const frames = scan.pixelData
    ? mapFrames(scan.pixelData, {
        rows: firstNumber(dataset, Tag.Rows),
        columns: firstNumber(dataset, Tag.Columns),
        samplesPerPixel: firstNumber(dataset, Tag.SamplesPerPixel),
        bitsAllocated: firstNumber(dataset, Tag.BitsAllocated),
        numberOfFrames: firstNumber(dataset, Tag.NumberOfFrames),
        photometricInterpretation: firstString(dataset, Tag.PhotometricInterpretation),
      })
    : null;
  const bulk = { ...scan.bulk };
  if (scan.pixelData) {
    const f = scan.pixelData.fragments;
    const start = scan.pixelData.encapsulated ? scan.pixelData.firstItem : f[0].offset;
    const last = f[f.length - 1];
    bulk[Tag.PixelData] = { vr: scan.pixelData.vr, offset: start, length: last ? last.offset + last.length - start : 0 };
  }
  return { studyUid, seriesUid, sopInstanceUid, sopClassUid, transferSyntaxUid: scan.transferSyntaxUid, dataset, bulk, frames };
}
