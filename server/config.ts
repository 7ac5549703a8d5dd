import fs from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { S3Settings } from './blob/s3.js';
import { parseDeidViews, type DeidViewSetting } from './deid/settings.js';
import { parseLabelRules, type LabelRule } from './labels.js';
import { AE_TITLE, parseAes, type AeRegistry } from './dimse/aes.js';
import { PACKAGE_ROOT } from './paths.js';

// The only reader of process.env (DESIGN.md). Every setting is validated at
// boot, and the result is frozen so no module can change it later.
const flag = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

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
  MAX_HEADER_BYTES: z.coerce
    .number()
    .int()
    .min(65536)
    .default(64 * 1024 * 1024),
  BULKDATA_THRESHOLD: z.coerce.number().int().min(0).default(1024),
  MAX_SEQUENCE_DEPTH: z.coerce.number().int().min(1).max(1000).default(32),
  MAX_DATA_ELEMENTS: z.coerce.number().int().min(1000).default(1_000_000),
  MAX_STOW_PARTS: z.coerce.number().int().min(1).default(1000),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  ORPHAN_GRACE_SECONDS: z.coerce.number().int().min(0).default(3600),
  REJECTION_RETENTION_DAYS: z.union([z.literal('never'), z.coerce.number().int().min(0).max(36500)]).default(30),
  STORAGE: z.enum(['fs', 's3']).default('fs'),
  S3_ENDPOINT: z
    .string()
    .regex(/^[^/:]+$/, 'a host name only (no scheme, port or path: those are S3_USE_SSL and S3_PORT)')
    .default('127.0.0.1'),
  S3_PORT: z.coerce.number().int().min(1).max(65535).default(9000),
  S3_USE_SSL: flag.default(false),
  S3_BUCKET: z.string().min(3).default('cairn'),
  S3_REGION: z.string().min(1).default('us-east-1'),
  S3_ACCESS_KEY: z.string().optional(),
  S3_SECRET_KEY: z.string().optional(),
  S3_PATH_STYLE: flag.default(true),
  AUTH: z.enum(['on', 'off']).default('on'),
  AUTH_JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  AUTH_JWT_PUBLIC_KEY: z.string().optional(),
  AUTH_JWKS_URL: z.string().url().optional(),
  AUTH_ISSUER: z.string().min(1).default('cairn'),
  AUTH_AUDIENCE: z.string().min(1).default('cairn'),
  AUTH_CLAIM_SUB: z.string().min(1).default('sub'),
  AUTH_CLAIM_ROLES: z.string().min(1).default('roles'),
  AUTH_CLAIM_CLEARANCES: z.string().min(1).default('clearances'),
  SESSION_TTL_SECONDS: z.coerce
    .number()
    .int()
    .min(60)
    .default(8 * 3600),
  PASSWORD_HASH_ROUNDS: z.coerce.number().int().min(4).max(15).default(12),
  AUTH_REVOCATION_CHECK_SECONDS: z.coerce.number().min(0).max(300).default(5),
  METRICS_TOKEN: z.string().min(32, 'must be at least 32 characters').optional(),
  LABEL_RULES: z.string().optional(),
  LABEL_RULES_FILE: z.string().optional(),
  AUDIT_SYSLOG: z
    .string()
    .regex(/^(udp|tcp):\/\/[^/]+:\d+\/?$/, 'must be udp://host:port or tcp://host:port')
    .optional(),
  PIXEL_WORKERS: z.coerce.number().int().min(1).max(64).optional(),
  PIXEL_QUEUE: z.coerce.number().int().min(1).default(64),
  PIXEL_MAX_FRAME_BYTES: z.coerce
    .number()
    .int()
    .min(1024 * 1024)
    .default(256 * 1024 * 1024),
  DEID_KEY: z.string().min(32, 'must be at least 32 characters').optional(),
  DEID_VIEWS: z.string().default('researcher=modified-dates'),
  DEID_SAFE_PRIVATE: z.string().optional(),
  DIMSE_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  DIMSE_HOST: z.string().optional(),
  DIMSE_AE_TITLE: z.string().regex(AE_TITLE, 'must be 1 to 16 characters without backslash').default('CAIRN'),
  DIMSE_AES: z.string().optional(),
  DIMSE_AES_FILE: z.string().optional(),
  DIMSE_AES_REFRESH_SECONDS: z.coerce.number().min(0).max(300).default(5),
  DIMSE_MAX_ASSOCIATIONS: z.coerce.number().int().min(1).default(32),
  DIMSE_IDLE_TIMEOUT_SECONDS: z.coerce.number().int().min(1).default(60),
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
  /** Most sequences an element may sit inside; deeper instances fail with 0xC000 as they are read. */
  readonly maxSequenceDepth: number;
  /** Most data elements, items and pixel data fragments in one instance; more fail with 0xC000. */
  readonly maxDataElements: number;
  /** Most parts one STOW-RS request may hold; the parts after them fail with 0xA700 unread. */
  readonly maxStowParts: number;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  readonly orphanGraceSeconds: number;
  /** Rejected instances (IHE IOCM) are deleted for good this many days after their rejection; undefined: never. */
  readonly rejectionRetentionDays: number | undefined;
  /** Where instance blobs live: `fs` under dataDir/blobs, or `s3` in the bucket below. */
  readonly storage: 'fs' | 's3';
  readonly s3: S3Settings;
  readonly auth: AuthConfig;
  readonly labelRules: readonly LabelRule[];
  /** Where to send the audit trail as DICOM audit messages (PS3.15 A.5) over syslog, if anywhere. */
  readonly auditSyslog?: string;
  /** A static bearer token that may read GET /metrics (for Prometheus), besides administrators. */
  readonly metricsToken?: string;
  readonly pixels: PixelSettings;
  /** De-identified views by role (server/deid/settings.ts). */
  readonly deid: DeidConfig;
  /** The DICOM upper-layer listener (server/dimse/); off unless DIMSE_PORT is set. */
  readonly dimse: DimseConfig;
}

/** The pixel codec worker pool (server/pixels/). */
export interface PixelSettings {
  /** Worker threads decoding and encoding frames; default min(2, cores). */
  readonly workers: number;
  /** Frames that may wait for a worker; past that a pixel request is answered 503 with Retry-After. */
  readonly maxQueue: number;
  /** Most bytes one decoded frame may take; a larger declared image is refused with 422 before anything is allocated. */
  readonly maxFrameBytes: number;
}

export interface DeidConfig {
  /** The secret project keys are derived from; when unset, Cairn keeps a generated one in DATA_DIR/deid-secret. */
  readonly key?: string;
  readonly views: readonly DeidViewSetting[];
}

export interface DimseConfig {
  readonly port?: number;
  readonly host: string;
  readonly aeTitle: string;
  readonly registry: AeRegistry;
  /** Where calling AEs are registered: DIMSE_AES or DIMSE_AES_FILE when either is set (then `registry`), else the `aes` table. */
  readonly aesSource: 'configuration' | 'database';
  /** How long a replica goes on using the `aes` table as it last read it. */
  readonly aesRefreshSeconds: number;
  readonly maxAssociations: number;
  readonly idleTimeoutSeconds: number;
}

export interface AuthConfig {
  readonly enabled: boolean;
  /** HS256 secret; when unset, Cairn keeps a generated one in DATA_DIR/auth-secret. */
  readonly jwtSecret?: string;
  /** PEM public key (RS256 or ES256) of an external identity provider. */
  readonly jwtPublicKey?: string;
  readonly jwksUrl?: string;
  readonly issuer: string;
  readonly audience: string;
  readonly claims: { readonly sub: string; readonly roles: string; readonly clearances: string };
  readonly sessionTtlSeconds: number;
  readonly passwordHashRounds: number;
  /** How long a replica may go on trusting what it last read about a session or the revoked tokens. */
  readonly revocationCheckSeconds: number;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  if (e.STORAGE === 's3' && !(e.S3_ACCESS_KEY && e.S3_SECRET_KEY)) throw new Error('invalid configuration: STORAGE=s3 needs S3_ACCESS_KEY and S3_SECRET_KEY');
  return Object.freeze({
    host: e.HOST,
    port: e.PORT,
    dataDir: path.resolve(e.DATA_DIR),
    databaseUrl: e.DATABASE_URL,
    embeddedPgPort: e.EMBEDDED_PG_PORT,
    publicUrl: e.PUBLIC_URL?.replace(/\/+$/, ''),
    trustProxy: e.TRUST_PROXY === 'true',
    viewerDir: e.VIEWER_DIR ? path.resolve(e.VIEWER_DIR) : path.join(PACKAGE_ROOT, 'viewer/ohif'),
    duplicatePolicy: e.DUPLICATE_POLICY,
    maxHeaderBytes: e.MAX_HEADER_BYTES,
    bulkDataThreshold: e.BULKDATA_THRESHOLD,
    maxSequenceDepth: e.MAX_SEQUENCE_DEPTH,
    maxDataElements: e.MAX_DATA_ELEMENTS,
    maxStowParts: e.MAX_STOW_PARTS,
    logLevel: e.LOG_LEVEL,
    orphanGraceSeconds: e.ORPHAN_GRACE_SECONDS,
    rejectionRetentionDays: e.REJECTION_RETENTION_DAYS === 'never' ? undefined : e.REJECTION_RETENTION_DAYS,
    storage: e.STORAGE,
    s3: Object.freeze({
      endPoint: e.S3_ENDPOINT,
      port: e.S3_PORT,
      useSSL: e.S3_USE_SSL,
      bucket: e.S3_BUCKET,
      region: e.S3_REGION,
      accessKey: e.S3_ACCESS_KEY ?? '',
      secretKey: e.S3_SECRET_KEY ?? '',
      pathStyle: e.S3_PATH_STYLE,
    }),
    auth: Object.freeze({
      enabled: e.AUTH === 'on',
      jwtSecret: e.AUTH_JWT_SECRET,
      jwtPublicKey: e.AUTH_JWT_PUBLIC_KEY === undefined ? undefined : readPem(e.AUTH_JWT_PUBLIC_KEY),
      jwksUrl: e.AUTH_JWKS_URL,
      issuer: e.AUTH_ISSUER,
      audience: e.AUTH_AUDIENCE,
      claims: Object.freeze({ sub: e.AUTH_CLAIM_SUB, roles: e.AUTH_CLAIM_ROLES, clearances: e.AUTH_CLAIM_CLEARANCES }),
      sessionTtlSeconds: e.SESSION_TTL_SECONDS,
      passwordHashRounds: e.PASSWORD_HASH_ROUNDS,
      revocationCheckSeconds: e.AUTH_REVOCATION_CHECK_SECONDS,
    }),
    metricsToken: e.METRICS_TOKEN,
    labelRules: Object.freeze(readLabelRules(e.LABEL_RULES, e.LABEL_RULES_FILE)),
    auditSyslog: e.AUDIT_SYSLOG,
    pixels: Object.freeze({ workers: e.PIXEL_WORKERS ?? Math.min(2, availableParallelism()), maxQueue: e.PIXEL_QUEUE, maxFrameBytes: e.PIXEL_MAX_FRAME_BYTES }),
    deid: Object.freeze({ key: e.DEID_KEY, views: Object.freeze(readDeidViews(e.DEID_VIEWS, e.DEID_SAFE_PRIVATE)) }),
    dimse: Object.freeze({
      port: e.DIMSE_PORT,
      host: e.DIMSE_HOST ?? e.HOST,
      aeTitle: e.DIMSE_AE_TITLE,
      // Set but empty (as a compose file leaves a variable) counts as not set.
      registry: readAes(blankless(e.DIMSE_AES), blankless(e.DIMSE_AES_FILE)),
      aesSource: blankless(e.DIMSE_AES) !== undefined || blankless(e.DIMSE_AES_FILE) !== undefined ? 'configuration' : 'database',
      aesRefreshSeconds: e.DIMSE_AES_REFRESH_SECONDS,
      maxAssociations: e.DIMSE_MAX_ASSOCIATIONS,
      idleTimeoutSeconds: e.DIMSE_IDLE_TIMEOUT_SECONDS,
    }),
  });
}

/** AUTH_JWT_PUBLIC_KEY holds the PEM itself or the path of a file holding it. */
function readPem(value: string): string {
  if (value.includes('-----BEGIN')) return value;
  try {
    return fs.readFileSync(value, 'utf8');
  } catch (err) {
    throw new Error(`invalid configuration: AUTH_JWT_PUBLIC_KEY is neither a PEM key nor a readable file (${(err as Error).message})`);
  }
}

function readLabelRules(text: string | undefined, file: string | undefined): LabelRule[] {
  if (text !== undefined && file !== undefined) throw new Error('invalid configuration: set LABEL_RULES or LABEL_RULES_FILE, not both');
  let source = text;
  if (file !== undefined) {
    try {
      source = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`invalid configuration: LABEL_RULES_FILE: ${(err as Error).message}`);
    }
  }
  if (source === undefined || source.trim() === '') return [];
  try {
    return parseLabelRules(source);
  } catch (err) {
    throw new Error(`invalid configuration: ${(err as Error).message}`);
  }
}

function readDeidViews(text: string, safePrivate: string | undefined): DeidViewSetting[] {
  try {
    return parseDeidViews(text, safePrivate);
  } catch (err) {
    throw new Error(`invalid configuration: ${(err as Error).message}`);
  }
}

function blankless(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v;
}

function readAes(text: string | undefined, file: string | undefined): AeRegistry {
  if (text !== undefined && file !== undefined) throw new Error('invalid configuration: set DIMSE_AES or DIMSE_AES_FILE, not both');
  let source = text;
  if (file !== undefined) {
    try {
      source = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`invalid configuration: DIMSE_AES_FILE: ${(err as Error).message}`);
    }
  }
  try {
    return parseAes(source === undefined || source.trim() === '' ? '[]' : source);
  } catch (err) {
    throw new Error(`invalid configuration: ${(err as Error).message}`);
  }
}

/** A config for tests and tools: defaults plus overrides, without reading process.env. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return Object.freeze({ ...loadConfig({}), ...overrides });
}
