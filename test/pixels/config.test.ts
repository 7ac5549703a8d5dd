import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/config.js';

describe('pixel settings', () => {
  it('default to at most two workers, a queue of 64 and 256 MiB per decoded frame', () => {
    const c = loadConfig({});
    expect(c.pixels.workers).toBeGreaterThanOrEqual(1);
    expect(c.pixels.workers).toBeLessThanOrEqual(2);
    expect(c.pixels).toMatchObject({ maxQueue: 64, maxFrameBytes: 256 * 1024 * 1024 });
  });

  it('read PIXEL_WORKERS, PIXEL_QUEUE and PIXEL_MAX_FRAME_BYTES', () => {
    const c = loadConfig({ PIXEL_WORKERS: '4', PIXEL_QUEUE: '10', PIXEL_MAX_FRAME_BYTES: String(64 * 1024 * 1024) });
    expect(c.pixels).toEqual({ workers: 4, maxQueue: 10, maxFrameBytes: 64 * 1024 * 1024 });
  });

  it('refuse values that would disable the pool or the limit', () => {
    expect(() => loadConfig({ PIXEL_WORKERS: '0' })).toThrow(/PIXEL_WORKERS/);
    expect(() => loadConfig({ PIXEL_QUEUE: '0' })).toThrow(/PIXEL_QUEUE/);
    expect(() => loadConfig({ PIXEL_MAX_FRAME_BYTES: '1000' })).toThrow(/PIXEL_MAX_FRAME_BYTES/);
  });
});
