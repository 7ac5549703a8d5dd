import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import supertest from 'supertest';
import { inject } from 'vitest';
import { createApp } from '../server/app.js';
import type { Principal, Role } from '../server/access.js';
import { createTokenService, type TokenService } from '../server/auth/tokens.js';
import type { BlobStore } from '../server/blob/blob-store.js';
import { createFsBlobStore } from '../server/blob/fs.js';
import { createS3BlobStore } from '../server/blob/s3.js';
import { testConfig, type AuthConfig, type Config } from '../server/config.js';
import type { AppDeps } from '../server/deps.js';
import { Research } from '../server/deid/research.js';
import { connect } from '../server/db/knex.js';
import { createLogger } from '../server/log.js';
import { createPixelCodecs } from '../server/pixels/codecs.js';

export const fixturesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/samples');

export function sample(name: string): Buffer {
  return fs.readFileSync(path.join(fixturesDir, name));
}

export interface TestArchive {
  deps: AppDeps;
  app: ReturnType<typeof createApp>;
  /** Requests as an administrator without clearances (who sees every unlabelled study). */
  request: ReturnType<typeof supertest.agent>;
  /** Requests without credentials. */
  anonymous: ReturnType<typeof supertest>;
  /** Requests as the given identity (a bearer token signed by this archive). */
  as(who: Who): ReturnType<typeof supertest.agent>;
  token(who: Who): string;
  blobDir: string;
  /** The URL of this archive's own database (for tools run as child processes). */
  dbUrl: string;
  /** Which blob store this run of the suite uses (the vitest project). */
  storage: 'fs' | 's3';
  close(): Promise<void>;
}

/** The blob store of this test project: a folder, or a fresh bucket on the run's S3 server. */
export async function testBlobStore(blobDir: string): Promise<{ storage: 'fs' | 's3'; blobs: BlobStore; config: Partial<Config> }> {
  const s3 = inject('s3');
  if (!s3) return { storage: 'fs', blobs: createFsBlobStore(blobDir), config: {} };
  const settings = { ...s3, useSSL: false, bucket: `t-${randomUUID()}`, region: 'us-east-1', pathStyle: true };
  const blobs = createS3BlobStore(settings);
  await blobs.ensureBucket();
  return { storage: 's3', blobs, config: { storage: 's3', s3: settings } };
}

/** An identity for a test token. */
export interface Who {
  sub?: string;
  roles: readonly Role[];
  clearances?: readonly string[];
}

export const ADMIN: Principal = { sub: 'test-admin', roles: ['admin'], clearances: [] };

/** A Cairn on a fresh database cloned from the migrated template, with its own blob folder. */
export type ArchiveOverrides = Omit<Partial<Config>, 'auth'> & { auth?: Partial<AuthConfig>; log?: AppDeps['log'] };

export async function createTestArchive(overrides: ArchiveOverrides = {}): Promise<TestArchive> {
  const base = inject('pgBaseUrl');
  const name = `t_${randomUUID().replace(/-/g, '')}`;
  const admin = connect(`${base}/cairn`, 1);
  await admin.raw(`create database ${name} template cairn_template`);
  await admin.destroy();
  const db = connect(`${base}/${name}`, 5);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-test-data-'));
  const blobDir = path.join(dataDir, 'blobs');
  const store = await testBlobStore(blobDir);
  const defaults = testConfig();
  const { log, auth, ...rest } = overrides;
  const config = testConfig({ dataDir, logLevel: 'silent', ...store.config, ...rest, auth: { ...defaults.auth, passwordHashRounds: 4, ...auth } });
  const secret = config.auth.jwtSecret ?? `test-secret-${randomUUID()}`;
  const tokens: TokenService = createTokenService(config.auth, secret);
  const pixels = createPixelCodecs(config.pixels);
  const deps: AppDeps = { config, db, blobs: store.blobs, log: log ?? createLogger(config), tokens, pixels };
  // De-identified views only when a test configures them (`deid`), so other tests read as before. Cairn
  // itself (boot.ts) gives the researcher role its view by default; here the access-control matrix and the
  // attributes-seam tests read a researcher's answers by original UIDs, as stored.
  if (rest.deid) {
    deps.research = new Research(config.deid, config.deid.key ?? 'test-deid-secret-0123456789abcdef');
    deps.presenter = deps.research.presenter;
  }
  const app = createApp(deps);
  const callback = app.callback();
  const token = (who: Who) =>
    tokens.sign({ sub: who.sub ?? `test-${who.roles.join('-') || 'none'}`, roles: who.roles, clearances: who.clearances ?? [] }, 3600);
  const as = (who: Who) => supertest.agent(callback).set('Authorization', `Bearer ${token(who)}`);
  return {
    deps,
    app,
    request: as(ADMIN),
    anonymous: supertest(callback),
    as,
    token,
    blobDir,
    dbUrl: `${base}/${name}`,
    storage: store.storage,
    async close() {
      await pixels.close();
      await db.destroy();
      const a = connect(`${base}/cairn`, 1);
      await a.raw(`drop database if exists ${name} with (force)`);
      await a.destroy();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A multipart/related body of application/dicom parts. */
/** One part of a metadata-and-bulk-data STOW body: its media type, and the Content-Location a BulkDataURI names. */
export interface RelatedPart {
  type: string;
  location?: string;
  body: Buffer;
}

/** A multipart/related body of `type` (application/dicom+json or +xml) whose parts carry their own types and locations. */
export function relatedBody(type: string, parts: RelatedPart[]): { body: Buffer; contentType: string } {
  const boundary = `cairn-${randomUUID()}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const loc = p.location ? `Content-Location: ${p.location}\r\n` : '';
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${p.type}\r\n${loc}\r\n`), p.body, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/related; type="${type}"; boundary=${boundary}` };
}

export function multipartBody(
  parts: Buffer[],
  boundary = `cairn-${randomUUID()}`,
  partType = 'application/dicom',
): { body: Buffer; contentType: string; boundary: string } {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${partType}\r\n\r\n`), p, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/related; type="application/dicom"; boundary=${boundary}`, boundary };
}

/** Splits a multipart/related response body into its parts. */
export function parseMultipart(body: Buffer, contentType: string): { headers: Record<string, string>; body: Buffer }[] {
  const m = /boundary="?([^";]+)"?/i.exec(contentType);
  if (!m) throw new Error(`no boundary in ${contentType}`);
  const delim = Buffer.from(`--${m[1]}`);
  const out: { headers: Record<string, string>; body: Buffer }[] = [];
  let pos = body.indexOf(delim);
  while (pos >= 0) {
    const start = pos + delim.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const headerEnd = body.indexOf('\r\n\r\n', start);
    const headers: Record<string, string> = {};
    for (const line of body
      .subarray(start + 2, headerEnd)
      .toString('latin1')
      .split('\r\n')) {
      const c = line.indexOf(':');
      if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
    }
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delim]), headerEnd + 4);
    out.push({ headers, body: body.subarray(headerEnd + 4, next) });
    pos = next + 2;
  }
  return out;
}

/** A supertest parser that buffers the raw body whatever its content type. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function binaryParser(res: any, cb: (err: Error | null, body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => cb(null, Buffer.concat(chunks)));
}
