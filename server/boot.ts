import path from 'node:path';
import { createTokenService, loadSecret } from './auth/tokens.js';
import { createFsBlobStore } from './blob/fs.js';
import type { Config } from './config.js';
import type { AppDeps } from './deps.js';
import { connect, migrate, startEmbeddedPostgres, type EmbeddedPg } from './db/knex.js';
import type { Logger } from './log.js';

/** Config → database (embedded when no DATABASE_URL) → migrations → blob store. */
export async function boot(config: Config, log: Logger): Promise<AppDeps & { shutdown(): Promise<void> }> {
  let embedded: EmbeddedPg | undefined;
  let url = config.databaseUrl;
  if (!url) {
    embedded = await startEmbeddedPostgres(path.join(config.dataDir, 'pg'), config.embeddedPgPort, (m) => log.warn(m));
    url = embedded.url;
    log.info({ port: config.embeddedPgPort, dir: path.join(config.dataDir, 'pg') }, 'embedded PostgreSQL started');
  }
  const db = connect(url);
  try {
    await migrate(db);
  } catch (err) {
    await db.destroy();
    await embedded?.stop();
    throw err;
  }
  const blobs = createFsBlobStore(path.join(config.dataDir, 'blobs'));
  await blobs.ping();
  const tokens = createTokenService(config.auth, loadSecret(config.auth, config.dataDir));
  return {
    config,
    db,
    blobs,
    log,
    tokens,
    async shutdown() {
      await db.destroy();
      await embedded?.stop();
    },
  };
}
