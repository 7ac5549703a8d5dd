import type { Readable } from 'node:stream';
import { isBlobMissing, type BlobStore } from '../blob/blob-store.js';
import { StorageUnavailableError } from '../errors.js';
import type { BlobErrorKind, BlobOp, Metrics } from './metrics.js';

function kindOf(err: unknown): BlobErrorKind {
  if (isBlobMissing(err)) return 'missing';
  return err instanceof StorageUnavailableError ? 'unavailable' : 'other';
}

/**
 * The blob store, with each operation's time and failures counted: the same
 * store (filesystem or S3) underneath, its answers and errors passed on
 * unchanged. A get is timed until its stream is open; an error of that
 * stream later is counted as a failed get too.
 */
export function measureBlobStore(inner: BlobStore, metrics: Pick<Metrics, 'blobOp' | 'blobError'>): BlobStore {
  async function timed<T>(op: BlobOp, run: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      const result = await run();
      metrics.blobOp(op, (performance.now() - start) / 1000);
      return result;
    } catch (err) {
      metrics.blobOp(op, (performance.now() - start) / 1000, kindOf(err));
      throw err;
    }
  }
  return {
    put: (key, body) => timed('put', () => inner.put(key, body)),
    async get(key, range) {
      const stream: Readable = await timed('get', () => inner.get(key, range));
      stream.on('error', (err) => metrics.blobError('get', kindOf(err)));
      return stream;
    },
    read: (key, size, into, offset) => timed('read', () => inner.read(key, size, into, offset)),
    delete: (key) => timed('delete', () => inner.delete(key)),
    async *list(prefix) {
      const start = performance.now();
      try {
        yield* inner.list(prefix);
        metrics.blobOp('list', (performance.now() - start) / 1000);
      } catch (err) {
        metrics.blobOp('list', (performance.now() - start) / 1000, kindOf(err));
        throw err;
      }
    },
    ping: () => timed('ping', () => inner.ping()),
  };
}
