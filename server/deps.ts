import type { BlobStore } from './blob/blob-store.js';
import type { TokenService } from './auth/tokens.js';
import type { Config } from './config.js';
import type { Db } from './db/knex.js';
import type { Logger } from './log.js';
import type { PixelCodecs } from './pixels/types.js';
import type { Presenter } from './present.js';

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
}
