import { PixelError, type PixelModule } from './types.js';

/** How far Cairn trusts a data set's declared image size before it allocates anything. */
export interface PixelLimits {
  /** Most bytes one decoded frame may take (rows × columns × samples × bytes per sample). */
  maxFrameBytes: number;
}

export const DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024;

const PHOTOMETRIC = /^(MONOCHROME1|MONOCHROME2|PALETTE COLOR|RGB|YBR_FULL|YBR_FULL_422|YBR_RCT|YBR_ICT|YBR_PARTIAL_420)$/;

/** Bytes one decoded sample takes: 1-bit data unpacks to a byte per pixel. */
export function bytesPerSample(m: PixelModule): number {
  return m.bitsAllocated <= 8 ? 1 : m.bitsAllocated / 8;
}

/** Bytes of one decoded frame, colour-by-pixel. */
export function decodedFrameBytes(m: PixelModule): number {
  return m.rows * m.columns * m.samplesPerPixel * bytesPerSample(m);
}

/**
 * Checks a pixel module before any buffer is sized from it (PS3.3 §C.7.6.3):
 * whole positive dimensions, 1 or 3 samples, 1/8/16/32 bits allocated, bits
 * stored within them, and a decoded frame under the configured maximum.
 */
export function checkModule(m: PixelModule, limits: PixelLimits): void {
  const bad = (what: string) => {
    throw new PixelError(422, 'InvalidPixelModule', `the image pixel module cannot be decoded: ${what}`);
  };
  for (const k of ['rows', 'columns', 'samplesPerPixel', 'bitsAllocated', 'bitsStored', 'highBit', 'numberOfFrames'] as const) {
    if (!Number.isInteger(m[k])) bad(`${k} is not a whole number`);
  }
  if (m.rows < 1 || m.rows > 65535 || m.columns < 1 || m.columns > 65535) bad(`rows ${m.rows} × columns ${m.columns} is outside 1-65535`);
  if (m.samplesPerPixel !== 1 && m.samplesPerPixel !== 3) bad(`samples per pixel ${m.samplesPerPixel} (1 or 3 are supported)`);
  if (![1, 8, 16, 32].includes(m.bitsAllocated)) bad(`bits allocated ${m.bitsAllocated} (1, 8, 16 or 32 are supported)`);
  if (m.bitsStored < 1 || m.bitsStored > m.bitsAllocated) bad(`bits stored ${m.bitsStored} with bits allocated ${m.bitsAllocated}`);
  if (m.highBit < m.bitsStored - 1 || m.highBit >= m.bitsAllocated) bad(`high bit ${m.highBit} with bits stored ${m.bitsStored}`);
  if (m.pixelRepresentation !== 0 && m.pixelRepresentation !== 1) bad(`pixel representation ${m.pixelRepresentation}`);
  if (m.planarConfiguration !== 0 && m.planarConfiguration !== 1) bad(`planar configuration ${m.planarConfiguration}`);
  if (!PHOTOMETRIC.test(m.photometricInterpretation)) bad(`photometric interpretation ${JSON.stringify(m.photometricInterpretation)}`);
  const bytes = decodedFrameBytes(m);
  if (bytes > limits.maxFrameBytes) {
    throw new PixelError(
      422,
      'FrameTooLarge',
      `a frame of ${m.rows} × ${m.columns} × ${m.samplesPerPixel} samples of ${m.bitsAllocated} bits is ${bytes} bytes decoded, over this server's limit of ${limits.maxFrameBytes}`,
    );
  }
}

/** A PixelError for data that does not hold what its header says. */
export function corrupt(message: string): PixelError {
  return new PixelError(422, 'CorruptPixelData', message);
}
