import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

// The only reader of process.env (DESIGN.md). Every setting is validated at
// boot, and the result is frozen so no module can change it later.
const schema = z.object({
  HOST: z.string().default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8042),
  DATA_DIR: z.string().default('./data'),
  DATABASE_URL: z.string().url().optional(),
  EMBEDDED_PG_PORT: z.coerce.number().int().min(1).max(65535).default(54329),
  PUBLIC_URL: z.string().url().optional(),
  TRUST_PROXY: z.enum(['true', 'false']).default('false'),
  VIEWER_DIR: z.string().optional(),
  DUPLICATE_POLICY: z.enum(['reject', 'overwrite']).default('reject'),
  MAX_HEADER_BYTES: z.coerce.number().int().min(65536).default(64 * 1024 * 1024),
  BULKDATA_THRESHOLD: z.coerce.number().int().min(0).default(1024),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  ORPHAN_GRACE_SECONDS: z.coerce.number().int().min(0).default(3600),
});

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly databaseUrl?: string;
  readonly embeddedPgPort: number;
  readonly publicUrl?: string;
  /** Take the client-facing protocol and host from X-Forwarded-Proto / X-Forwarded-Host. */
  readonly trustProxy: boolean;
  /** The prebuilt OHIF files served at / (viewer/fetch-ohif.mjs puts them in viewer/ohif). */
  readonly viewerDir: string;
  readonly duplicatePolicy: 'reject' | 'overwrite';
  readonly maxHeaderBytes: number;
  readonly bulkDataThreshold: number;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  readonly orphanGraceSeconds: number;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  return Object.freeze({
    host: e.HOST,
    port: e.PORT,
    dataDir: path.resolve(e.DATA_DIR),
    databaseUrl: e.DATABASE_URL,
    embeddedPgPort: e.EMBEDDED_PG_PORT,
    publicUrl: e.PUBLIC_URL?.replace(/\/+$/, ''),
    trustProxy: e.TRUST_PROXY === 'true',
    viewerDir: e.VIEWER_DIR ? path.resolve(e.VIEWER_DIR) : fileURLToPath(new URL('../viewer/ohif', import.meta.url)),
    duplicatePolicy: e.DUPLICATE_POLICY,
    maxHeaderBytes: e.MAX_HEADER_BYTES,
    bulkDataThreshold: e.BULKDATA_THRESHOLD,
    logLevel: e.LOG_LEVEL,
    orphanGraceSeconds: e.ORPHAN_GRACE_SECONDS,
  });
}

/** A config for tests and tools: defaults plus overrides, without reading process.env. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return Object.freeze({ ...loadConfig({}), ...overrides });
}
