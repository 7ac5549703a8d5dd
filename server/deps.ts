import type { BlobStore } from './blob/blob-store.js';
import type { TokenService } from './auth/tokens.js';
import type { Config } from './config.js';
import type { Db } from './db/knex.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics/metrics.js';
import type { PixelCodecs } from './pixels/types.js';
import type { Presenter } from './present.js';
import type { Research } from './deid/research.js';

/** What createApp and every handler receive (DESIGN.md house style 3: dependencies are arguments). */
export interface AppDeps {
  config: Config;
  db: Db;
  blobs: BlobStore;
  log: Logger;
  tokens: TokenService;
  /** Decoding and encoding of pixel data, in a worker pool (server/pixels/). */
  pixels: PixelCodecs;
  /** The view of attributes each caller gets (server/present.ts); absent: attributes as stored. */
  presenter?: Presenter;
  /** Where measurements go (server/metrics/); absent: createApp makes one, with a measured blob store. */
  metrics?: Metrics;
  /** De-identified views by role (server/deid/research.ts); absent: every caller reads attributes as stored. */
  research?: Research;
}
