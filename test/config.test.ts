import { describe, expect, it } from 'vitest';
import { loadConfig } from '../server/config.js';

describe('storage settings', () => {
  it('default to the filesystem store', () => {
    expect(loadConfig({}).storage).toBe('fs');
  });

  it('read the S3 settings, with true/false flags', () => {
    const c = loadConfig({
      STORAGE: 's3',
      S3_ENDPOINT: 'minio',
      S3_PORT: '9100',
      S3_USE_SSL: 'true',
      S3_PATH_STYLE: 'false',
      S3_BUCKET: 'pacs',
      S3_ACCESS_KEY: 'k',
      S3_SECRET_KEY: 's',
    });
    expect(c.storage).toBe('s3');
    expect(c.s3).toEqual({
      endPoint: 'minio',
      port: 9100,
      useSSL: true,
      bucket: 'pacs',
      region: 'us-east-1',
      accessKey: 'k',
      secretKey: 's',
      pathStyle: false,
    });
  });

  it('refuse STORAGE=s3 without credentials, and a flag that is not true or false', () => {
    expect(() => loadConfig({ STORAGE: 's3' })).toThrow(/S3_ACCESS_KEY/);
    expect(() => loadConfig({ STORAGE: 's3', S3_ACCESS_KEY: 'k', S3_SECRET_KEY: 's', S3_USE_SSL: 'yes' })).toThrow(/S3_USE_SSL/);
    expect(() => loadConfig({ STORAGE: 'disk' })).toThrow(/STORAGE/);
    expect(() => loadConfig({ S3_ENDPOINT: 'http://minio:9000' })).toThrow(/S3_ENDPOINT: a host name only/);
  });
});

describe('limits on hostile input', () => {
  it('default to a nesting depth of 32, a million elements and 1000 STOW parts', () => {
    const c = loadConfig({});
    expect([c.maxSequenceDepth, c.maxDataElements, c.maxStowParts]).toEqual([32, 1_000_000, 1000]);
  });

  it('read MAX_SEQUENCE_DEPTH, MAX_DATA_ELEMENTS and MAX_STOW_PARTS, and refuse values that disable them', () => {
    const c = loadConfig({ MAX_SEQUENCE_DEPTH: '64', MAX_DATA_ELEMENTS: '5000000', MAX_STOW_PARTS: '20000' });
    expect([c.maxSequenceDepth, c.maxDataElements, c.maxStowParts]).toEqual([64, 5_000_000, 20_000]);
    expect(() => loadConfig({ MAX_SEQUENCE_DEPTH: '0' })).toThrow(/MAX_SEQUENCE_DEPTH/);
    expect(() => loadConfig({ MAX_SEQUENCE_DEPTH: '100000' })).toThrow(/MAX_SEQUENCE_DEPTH/);
    expect(() => loadConfig({ MAX_DATA_ELEMENTS: 'many' })).toThrow(/MAX_DATA_ELEMENTS/);
    expect(() => loadConfig({ MAX_STOW_PARTS: '0' })).toThrow(/MAX_STOW_PARTS/);
  });
});
