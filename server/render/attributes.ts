import type { DicomJson, JsonAttribute } from '../dicom/json.js';
import { Tag } from '../dicom/tags.js';
import { PixelError, type PixelModule } from '../pixels/types.js';
import type { Lut, RenderOptions, VoiFunction, Window } from './pipeline.js';

// What rendering needs, read from an instance's stored DICOM JSON (the index's
// metadata column), so the blob is opened only for the frame itself and for
// palette LUT data large enough to have been kept as bulk data.

/** The attributes of PS3.3 §C.7.6.3 and §C.11 that rendering reads, beyond those named in dicom/tags.ts. */
const T = {
  PhotometricInterpretation: '00280004',
  PlanarConfiguration: '00280006',
  BitsStored: '00280101',
  HighBit: '00280102',
  WindowCenter: '00281050',
  WindowWidth: '00281051',
  RescaleIntercept: '00281052',
  RescaleSlope: '00281053',
  VOILUTFunction: '00281056',
  RedPaletteColorLookupTableData: '00281201',
  GreenPaletteColorLookupTableData: '00281202',
  BluePaletteColorLookupTableData: '00281203',
  ModalityLUTSequence: '00283000',
  LUTData: '00283006',
  VOILUTSequence: '00283010',
} as const;

/** Reads the bytes of a top-level bulk data element of the instance (palette LUT data above the bulk data threshold). */
export type BulkReader = (tag: string) => Promise<Buffer | undefined>;

export interface RenderAttributes {
  module: PixelModule;
  options: RenderOptions;
}

function first(attr: JsonAttribute | undefined): unknown {
  return attr?.Value?.[0];
}

function num(json: DicomJson, tag: string): number | undefined {
  const v = first(json[tag]);
  const n = typeof v === 'string' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}

function str(json: DicomJson, tag: string): string | undefined {
  const v = first(json[tag]);
  return typeof v === 'string' ? v.trim() : undefined;
}

/** The pixel module of the instance as stored; a 422 when the image attributes are missing. */
export function pixelModuleOf(json: DicomJson): PixelModule {
  const rows = num(json, Tag.Rows);
  const columns = num(json, Tag.Columns);
  const bitsAllocated = num(json, Tag.BitsAllocated);
  const photometric = str(json, T.PhotometricInterpretation);
  if (!rows || !columns || !bitsAllocated || !photometric)
    throw new PixelError(422, 'NotAnImage', 'the instance has no Rows, Columns, Bits Allocated and Photometric Interpretation to render');
  const bitsStored = num(json, T.BitsStored) ?? bitsAllocated;
  const samplesPerPixel = num(json, Tag.SamplesPerPixel) ?? 1;
  return {
    rows,
    columns,
    samplesPerPixel,
    bitsAllocated,
    bitsStored,
    highBit: num(json, T.HighBit) ?? bitsStored - 1,
    pixelRepresentation: num(json, Tag.PixelRepresentation) === 1 ? 1 : 0,
    photometricInterpretation: photometric,
    planarConfiguration: samplesPerPixel > 1 && num(json, T.PlanarConfiguration) === 1 ? 1 : 0,
    numberOfFrames: Math.max(1, num(json, Tag.NumberOfFrames) ?? 1),
  };
}

/** The rendering attributes of an instance: module, rescale or modality LUT, first window or VOI LUT, palette. */
export async function renderAttributesOf(json: DicomJson, readBulk: BulkReader): Promise<RenderAttributes> {
  const module = pixelModuleOf(json);
  const options: RenderOptions = {};
  const signed = module.pixelRepresentation === 1;
  const slope = num(json, T.RescaleSlope);
  const intercept = num(json, T.RescaleIntercept);
  if (slope !== undefined || intercept !== undefined) options.rescale = { slope: slope ?? 1, intercept: intercept ?? 0 };
  const modality = itemOf(json[T.ModalityLUTSequence]);
  if (modality) options.modalityLut = lutOf(modality[Tag.LUTDescriptor], await inlineBytes(modality[T.LUTData]), signed);
  // PS3.3 §C.11.2.1.2: the first of several stored windows is the default one.
  const center = num(json, T.WindowCenter);
  const width = num(json, T.WindowWidth);
  const fn = voiFunctionOf(str(json, T.VOILUTFunction)) ?? 'LINEAR';
  if (center !== undefined && width !== undefined && width > 0 && (fn !== 'LINEAR' || width >= 1)) options.window = { center, width, fn };
  const voi = itemOf(json[T.VOILUTSequence]);
  if (voi && !options.window) options.voiLut = lutOf(voi[Tag.LUTDescriptor], await inlineBytes(voi[T.LUTData]), false);
  if (module.photometricInterpretation.toUpperCase() === 'PALETTE COLOR') {
    const tags = [
      [Tag.RedPaletteColorLookupTableDescriptor, T.RedPaletteColorLookupTableData],
      [Tag.GreenPaletteColorLookupTableDescriptor, T.GreenPaletteColorLookupTableData],
      [Tag.BluePaletteColorLookupTableDescriptor, T.BluePaletteColorLookupTableData],
    ];
    const luts = await Promise.all(
      tags.map(async ([d, data]) => lutOf(json[d], json[data]?.BulkDataURI ? await readBulk(data) : await inlineBytes(json[data]), signed)),
    );
    options.palette = luts as [Lut, Lut, Lut];
  }
  return { module, options };
}

export function voiFunctionOf(s: string | undefined): VoiFunction | undefined {
  const u = s?.toUpperCase();
  return u === 'LINEAR' || u === 'LINEAR_EXACT' || u === 'SIGMOID' ? u : undefined;
}

function itemOf(attr: JsonAttribute | undefined): DicomJson | undefined {
  const item = attr?.Value?.[0];
  return item && typeof item === 'object' ? (item as DicomJson) : undefined;
}

/** LUT data as bytes: OW data is InlineBinary; US or SS data is a list of values. */
async function inlineBytes(attr: JsonAttribute | undefined): Promise<Buffer | number[] | undefined> {
  if (!attr) return undefined;
  if (attr.InlineBinary !== undefined) return Buffer.from(attr.InlineBinary, 'base64');
  if (Array.isArray(attr.Value)) return attr.Value as number[];
  return undefined;
}

/**
 * A LUT from its descriptor (PS3.3 §C.11.1.1.1: entries, 0 meaning 65536;
 * first value mapped, signed when the pixel values are; bits per entry) and data.
 */
function lutOf(descriptor: JsonAttribute | undefined, data: Buffer | number[] | undefined, signed: boolean): Lut {
  const d = descriptor?.Value as number[] | undefined;
  if (!d || d.length < 3 || !data) throw new PixelError(422, 'LutInvalid', 'a lookup table has no descriptor or no data');
  const entries = d[0] === 0 ? 65536 : d[0];
  const firstMapped = signed && d[1] > 32767 ? d[1] - 65536 : d[1];
  const bitsPerEntry = d[2];
  let values: number[] | Uint16Array | Uint8Array;
  if (Array.isArray(data)) values = data;
  else if (bitsPerEntry <= 8 && data.length === entries) values = new Uint8Array(data);
  else {
    const words = new Uint16Array(Math.floor(data.length / 2));
    for (let i = 0; i < words.length; i++) words[i] = data.readUInt16LE(i * 2);
    values = words;
  }
  if (values.length < entries) throw new PixelError(422, 'LutInvalid', `a lookup table declares ${entries} entries but holds ${values.length}`);
  return { firstMapped, bitsPerEntry, data: values.slice(0, entries) };
}

/** The `window` query parameter (PS3.18 §8.3.5.1.4): center,width[,function]. */
export function parseWindow(value: string | undefined): Window | undefined {
  if (value === undefined) return undefined;
  const [c, w, f, ...rest] = value.split(',');
  const center = Number(c);
  const width = Number(w);
  const fn = f === undefined ? 'LINEAR' : voiFunctionOf(f.trim());
  if (rest.length || c?.trim() === '' || w === undefined || w.trim() === '' || !fn)
    throw new PixelError(400, 'InvalidWindow', `window "${value}" must be center,width[,function] with function LINEAR, LINEAR_EXACT or SIGMOID`);
  return { center, width, fn };
}
