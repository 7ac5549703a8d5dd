import path from 'node:path';
import type { Config } from '../config.js';
import type { BlobStore } from './blob-store.js';
import { createFsBlobStore } from './fs.js';
import { createS3BlobStore } from './s3.js';

/**
 * The blob store the configuration names, ready for use: the filesystem
 * store under dataDir/blobs by default, or the S3 bucket (created when it is
 * missing) with STORAGE=s3. Boot and the storage tools open it the same way.
 */
export async function openBlobStore(config: Config): Promise<BlobStore> {
  if (config.storage === 's3') {
    const s3 = createS3BlobStore(config.s3);
    await s3.ensureBucket();
    await s3.ping();
    return s3;
  }
  const fsStore = createFsBlobStore(path.join(config.dataDir, 'blobs'));
  await fsStore.ping();
  return fsStore;
}
