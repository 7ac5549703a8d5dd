import { firstNumber, firstString, type DicomJson } from '../dicom/json.js';
import { Tag } from '../dicom/tags.js';
import { PixelError, type PixelModule } from './types.js';

// Image Pixel module attributes (PS3.3 §C.7.6.3) not in the shared tag list.
const PhotometricInterpretation = '00280004';
const PlanarConfiguration = '00280006';
const BitsStored = '00280101';
const HighBit = '00280102';

/**
 * The Image Pixel module of an instance's DICOM JSON. Type 1 attributes that
 * are missing fail with 422; Bits Stored and High Bit default from Bits
 * Allocated, Planar Configuration to 0 and Number of Frames to 1.
 */
export function pixelModuleOf(ds: DicomJson): PixelModule {
  const need = (tag: string, name: string): number => {
    const v = firstNumber(ds, tag);
    if (v === undefined) throw new PixelError(422, 'InvalidPixelModule', `the instance has no ${name} (${tag.slice(0, 4)},${tag.slice(4)})`);
    return v;
  };
  const rows = need(Tag.Rows, 'Rows');
  const columns = need(Tag.Columns, 'Columns');
  const bitsAllocated = need(Tag.BitsAllocated, 'Bits Allocated');
  const bitsStored = firstNumber(ds, BitsStored) ?? bitsAllocated;
  const samplesPerPixel = firstNumber(ds, Tag.SamplesPerPixel) ?? 1;
  const photometric = firstString(ds, PhotometricInterpretation)?.trim() || (samplesPerPixel === 3 ? 'RGB' : 'MONOCHROME2');
  return {
    rows,
    columns,
    samplesPerPixel,
    bitsAllocated,
    bitsStored,
    highBit: firstNumber(ds, HighBit) ?? bitsStored - 1,
    pixelRepresentation: firstNumber(ds, Tag.PixelRepresentation) === 1 ? 1 : 0,
    photometricInterpretation: photometric,
    planarConfiguration: samplesPerPixel > 1 && firstNumber(ds, PlanarConfiguration) === 1 ? 1 : 0,
    numberOfFrames: Math.max(1, firstNumber(ds, Tag.NumberOfFrames) ?? 1),
  };
}
