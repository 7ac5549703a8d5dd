import { describe, expect, it } from 'vitest';
import { loadConfig } from '../server/config.js';

describe('storage settings', () => {
  it('default to the filesystem store', () => {
    expect(loadConfig({}).storage).toBe('fs');
  });

  it('read the S3 settings, with true/false flags', () => {
    const c = loadConfig({ STORAGE: 's3', S3_ENDPOINT: 'minio', S3_PORT: '9100', S3_USE_SSL: 'true', S3_PATH_STYLE: 'false', S3_BUCKET: 'pacs', S3_ACCESS_KEY: 'k', S3_SECRET_KEY: 's' });
    expect(c.storage).toBe('s3');
    expect(c.s3).toEqual({ endPoint: 'minio', port: 9100, useSSL: true, bucket: 'pacs', region: 'us-east-1', accessKey: 'k', secretKey: 's', pathStyle: false });
  });

  it('refuse STORAGE=s3 without credentials, and a flag that is not true or false', () => {
    expect(() => loadConfig({ STORAGE: 's3' })).toThrow(/S3_ACCESS_KEY/);
    expect(() => loadConfig({ STORAGE: 's3', S3_ACCESS_KEY: 'k', S3_SECRET_KEY: 's', S3_USE_SSL: 'yes' })).toThrow(/S3_USE_SSL/);
    expect(() => loadConfig({ STORAGE: 'disk' })).toThrow(/STORAGE/);
    expect(() => loadConfig({ S3_ENDPOINT: 'http://minio:9000' })).toThrow(/S3_ENDPOINT: a host name only/);
  });
});
