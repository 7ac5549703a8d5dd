import path from 'node:path';
import { createTokenService, loadSecret } from './auth/tokens.js';
import type { BlobStore } from './blob/blob-store.js';
import { openBlobStore } from './blob/open.js';
import type { Config } from './config.js';
import type { AppDeps } from './deps.js';
import { connect, migrate, startEmbeddedPostgres, type EmbeddedPg } from './db/knex.js';
import type { Logger } from './log.js';
import { createPixelCodecs } from './pixels/codecs.js';

/** Config → database (embedded when no DATABASE_URL) → migrations → blob store (fs, or S3 with its bucket created). */
export async function boot(config: Config, log: Logger): Promise<AppDeps & { shutdown(): Promise<void> }> {
  let embedded: EmbeddedPg | undefined;
  let url = config.databaseUrl;
  if (!url) {
    embedded = await startEmbeddedPostgres(path.join(config.dataDir, 'pg'), config.embeddedPgPort, (m) => log.warn(m));
    url = embedded.url;
    log.info({ port: config.embeddedPgPort, dir: path.join(config.dataDir, 'pg') }, 'embedded PostgreSQL started');
  }
  const db = connect(url);
  let blobs: BlobStore;
  try {
    await migrate(db);
    blobs = await openBlobStore(config);
    log.info(
      config.storage === 's3'
        ? { storage: 's3', endpoint: `${config.s3.endPoint}:${config.s3.port}`, bucket: config.s3.bucket }
        : { storage: 'fs', dir: path.join(config.dataDir, 'blobs') },
      'blob store ready',
    );
  } catch (err) {
    await db.destroy();
    await embedded?.stop();
    throw err;
  }
  const tokens = createTokenService(config.auth, loadSecret(config.auth, config.dataDir));
  const pixels = createPixelCodecs(config.pixels);
  return {
    config,
    db,
    blobs,
    log,
    tokens,
    pixels,
    async shutdown() {
      await pixels.close();
      await db.destroy();
      await embedded?.stop();
    },
  };
}
