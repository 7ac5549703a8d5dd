import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, type ClientOptions } from 'minio';
import { StorageUnavailableError } from '../errors.js';
import type { BlobInfo, BlobStore, ByteRange } from './blob-store.js';

export interface S3Settings {
  endPoint: string;
  port: number;
  useSSL: boolean;
  bucket: string;
  region: string;
  accessKey: string;
  secretKey: string;
  pathStyle: boolean;
}

export interface S3Tuning {
  /** Bytes buffered per multipart part (S3 wants at least 5 MiB for all but the last). */
  partSize: number;
  /** Retries of a request that failed transiently, while the store was last seen healthy. */
  retries: number;
  /** First backoff delay; each retry doubles it, with jitter. */
  baseDelayMs: number;
  /** A request that has no response by then is abandoned (and counts as transient). */
  timeoutMs: number;
}

const READ_IDLE_MS = 120_000;

const defaultTuning: S3Tuning = { partSize: 8 * 1024 * 1024, retries: 4, baseDelayMs: 100, timeoutMs: 30_000 };

export type S3BlobStore = BlobStore & {
  /** Creates the bucket when it is missing (at boot; two replicas may race here). */
  ensureBucket(): Promise<void>;
};

// S3 error codes that say "not now" rather than "not so" (AWS S3 API
// reference, Error responses; MinIO adds its own while it starts up).
const TRANSIENT_S3_CODES = new Set([
  'InternalError',
  'SlowDown',
  'ServiceUnavailable',
  'RequestTimeout',
  'XMinioServerNotInitialized',
  'XMinioReadQuorum',
  'XMinioWriteQuorum',
]);
const TRANSIENT_NET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
]);

function isTransient(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code ?? '';
  if (TRANSIENT_NET_CODES.has(code) || TRANSIENT_S3_CODES.has(code)) return true;
  // Node reports a socket closed before any response this way, without a code.
  return /socket hang up/i.test(String((err as Error | undefined)?.message));
}

function isNoSuchKey(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return code === 'NoSuchKey' || code === 'NotFound';
}

function missing(key: string): Error {
  return Object.assign(new Error(`no blob is stored under ${key}`), { code: 'ENOENT' });
}

/**
 * Blob store on any S3-compatible service (MinIO, AWS S3, …) through the
 * `minio` client. Uploads are streamed: an instance smaller than one part is
 * buffered and sent with one PUT (the common case: one request); a larger
 * one becomes a multipart upload, one part buffered while the previous one
 * is sent, so memory stays about two parts whatever the instance size. S3
 * makes an object visible only once it is whole, so a failed put leaves
 * nothing under its key (an unfinished multipart upload is aborted).
 *
 * Every request whose bytes are in memory is retried with exponential
 * backoff on connection errors and S3's "try again" codes. Once the retries
 * are spent the store counts as down: the error becomes a
 * StorageUnavailableError (503), and later requests fail after one attempt
 * until one succeeds, so a STOW of many parts does not wait out every
 * instance's backoff.
 */
export function createS3BlobStore(s: S3Settings, tuning: Partial<S3Tuning> = {}): S3BlobStore {
  const t = { ...defaultTuning, ...tuning };
  const bucket = s.bucket;
  const mod = s.useSSL ? https : http;
  const agent = new mod.Agent({ keepAlive: true, maxSockets: 64 });
  // minio sets no request timeout; an unresponsive service would hang every
  // request. Until the response comes the limit is timeoutMs. After it, a
  // body may wait for a slow reader of ours (back-pressure, not a fault), so
  // only a body left unread for READ_IDLE_MS is dropped: that is a response
  // whose reader went away, and it would otherwise hold a pooled connection.
  const transport = {
    request(opts: http.RequestOptions, cb: (res: http.IncomingMessage) => void) {
      const req = mod.request(opts, cb);
      let answered = false;
      req.setTimeout(t.timeoutMs, () => {
        const what = answered ? `a response body was left unread for ${READ_IDLE_MS} ms` : `no response within ${t.timeoutMs} ms`;
        req.destroy(Object.assign(new Error(`S3 request timed out: ${what}`), { code: 'ETIMEDOUT' }));
      });
      req.once('response', () => {
        answered = true;
        req.setTimeout(READ_IDLE_MS);
      });
      return req;
    },
  } as unknown as ClientOptions['transport'];
  const client = new Client({
    endPoint: s.endPoint,
    port: s.port,
    useSSL: s.useSSL,
    region: s.region,
    accessKey: s.accessKey,
    secretKey: s.secretKey,
    pathStyle: s.pathStyle,
    transport,
    transportAgent: agent,
    // Retries are ours (below): minio's retry only HTTP statuses, not refused connections.
    retryOptions: { disableRetry: true },
  });

  let healthy = true;
  async function attempt<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const tries = healthy ? t.retries + 1 : 1;
    for (let i = 0; ; i++) {
      try {
        const v = await fn();
        healthy = true;
        return v;
      } catch (err) {
        if (!isTransient(err)) throw err;
        if (i + 1 >= tries) {
          healthy = false;
          throw new StorageUnavailableError(`S3 ${what}: ${(err as Error).message || (err as { code?: string }).code}`, err);
        }
        const delay = t.baseDelayMs * 2 ** i;
        await sleep(delay + Math.random() * delay);
      }
    }
  }

  async function open(key: string, range?: ByteRange): Promise<Readable> {
    try {
      return await attempt('get', () =>
        range ? client.getPartialObject(bucket, key, range.start, range.end - range.start + 1) : client.getObject(bucket, key),
      );
    } catch (err) {
      if (isNoSuchKey(err)) throw missing(key);
      throw err;
    }
  }

  async function putMultipart(key: string, first: Buffer, rest: AsyncIterator<Buffer>): Promise<number> {
    const uploadId = await attempt('initiate upload', () => client.initiateNewMultipartUpload(bucket, key, {}));
    const etags: { part: number; etag: string }[] = [];
    let size = 0;
    let sending: Promise<void> = Promise.resolve();
    const send = async (part: number, buf: Buffer) => {
      // One part in flight while the next is filled.
      await sending;
      const p = attempt('upload part', () =>
        client.uploadPart({ bucketName: bucket, objectName: key, uploadID: uploadId, partNumber: part, headers: {} }, buf),
      ).then((r) => {
        etags.push({ part, etag: r.etag });
      });
      p.catch(() => undefined);
      sending = p;
    };
    try {
      let part = 1;
      await send(part++, first);
      size += first.length;
      let chunks: Buffer[] = [];
      let filled = 0;
      for (let r = await rest.next(); !r.done; r = await rest.next()) {
        chunks.push(r.value);
        filled += r.value.length;
        if (filled >= t.partSize) {
          await send(part++, Buffer.concat(chunks, filled));
          size += filled;
          chunks = [];
          filled = 0;
        }
      }
      if (filled) {
        await send(part++, Buffer.concat(chunks, filled));
        size += filled;
      }
      await sending;
      etags.sort((a, b) => a.part - b.part);
      await attempt('complete upload', () => client.completeMultipartUpload(bucket, key, uploadId, etags));
      return size;
    } catch (err) {
      await sending.catch(() => undefined);
      await client.abortMultipartUpload(bucket, key, uploadId).catch(() => undefined);
      throw err;
    }
  }

  return {
    async put(key, body) {
      if (body.destroyed) throw body.errored ?? new Error('the blob stream was aborted');
      const it = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      const chunks: Buffer[] = [];
      let filled = 0;
      for (let r = await it.next(); !r.done; r = await it.next()) {
        chunks.push(r.value);
        filled += r.value.length;
        if (filled >= t.partSize) return { size: await putMultipart(key, Buffer.concat(chunks, filled), it) };
      }
      const buf = Buffer.concat(chunks, filled);
      await attempt('put', () => client.putObject(bucket, key, buf, buf.length));
      return { size: buf.length };
    },

    get: open,

    async read(key, size, into, offset = 0) {
      return attempt('read', async () => {
        let stream: Readable;
        try {
          stream = offset ? await client.getPartialObject(bucket, key, offset, size) : await client.getObject(bucket, key);
        } catch (err) {
          if (isNoSuchKey(err)) throw missing(key);
          throw err;
        }
        const buf = into ?? Buffer.allocUnsafe(size);
        let got = 0;
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          if (got + chunk.length > size) throw new Error(`blob ${key} is longer than its recorded ${size} bytes`);
          chunk.copy(buf, got);
          got += chunk.length;
        }
        if (got < size) throw new Error(`blob ${key} is shorter than its recorded ${size} bytes`);
        return buf;
      });
    },

    async delete(key) {
      // S3 answers a delete of a missing key with success, as the fs store does.
      await attempt('delete', () => client.removeObject(bucket, key));
    },

    async *list(prefix): AsyncIterable<BlobInfo> {
      const p = prefix.endsWith('/') ? prefix : `${prefix}/`;
      let token = '';
      for (;;) {
        const page = await attempt('list', () => client.listObjectsV2Query(bucket, p, token, '', 1000, ''));
        for (const o of page.objects) if (o.name) yield { key: o.name, size: o.size, modified: o.lastModified };
        if (!page.isTruncated || !page.nextContinuationToken) return;
        token = page.nextContinuationToken;
      }
    },

    async ping() {
      // One attempt: readiness should answer now, not after a backoff.
      let exists: boolean;
      try {
        exists = await client.bucketExists(bucket);
      } catch (err) {
        if (isTransient(err)) throw new StorageUnavailableError(`S3 ping: ${(err as Error).message || (err as { code?: string }).code}`, err);
        throw err;
      }
      if (!exists) throw new Error(`S3 bucket ${bucket} does not exist`);
    },

    async ensureBucket() {
      if (await attempt('bucket check', () => client.bucketExists(bucket))) return;
      try {
        await attempt('bucket create', () => client.makeBucket(bucket, s.region));
      } catch (err) {
        // Another replica created it first.
        if (!(await client.bucketExists(bucket).catch(() => false))) throw err;
      }
    },
  };
}
