import { createHash } from 'node:crypto';
import path from 'node:path';
import { sweepOrphans } from './archive.js';
import { isBlobMissing, type BlobStore } from './blob/blob-store.js';
import type { Config } from './config.js';
import { indexedBlobsAfter } from './db/inventory.js';
import { connect, migrate, startEmbeddedPostgres, type Db } from './db/knex.js';

export interface VerifyProblem {
  sopInstanceUid: string;
  blobKey: string;
  problem: 'missing' | 'size' | 'checksum' | 'unreadable';
  detail: string;
}

export interface VerifyReport {
  checked: number;
  bytes: number;
  problems: VerifyProblem[];
}

/**
 * Walks the whole index in pages (keyset order on the SOP Instance UID, so
 * memory stays one page whatever the archive size) and checks that every
 * instance's blob exists, has the recorded size and the recorded SHA-256,
 * streaming each blob through the hash.
 */
export async function verifyStorage(
  db: Db,
  blobs: BlobStore,
  opts: { pageSize?: number; concurrency?: number; onProblem?: (p: VerifyProblem) => void } = {},
): Promise<VerifyReport> {
  const pageSize = opts.pageSize ?? 500;
  const concurrency = opts.concurrency ?? 4;
  const report: VerifyReport = { checked: 0, bytes: 0, problems: [] };
  const problem = (p: VerifyProblem) => {
    report.problems.push(p);
    opts.onProblem?.(p);
  };
  let after = '';
  for (;;) {
    const rows = await indexedBlobsAfter(db, after, pageSize);
    if (!rows.length) break;
    after = rows[rows.length - 1].sopInstanceUid;
    let next = 0;
    const worker = async () => {
      while (next < rows.length) {
        const r = rows[next++];
        const refs = { sopInstanceUid: r.sopInstanceUid, blobKey: r.blobKey };
        try {
          const hash = createHash('sha256');
          let size = 0;
          for await (const chunk of await blobs.get(r.blobKey)) {
            hash.update(chunk as Buffer);
            size += (chunk as Buffer).length;
          }
          report.bytes += size;
          if (size !== r.size) problem({ ...refs, problem: 'size', detail: `${size} bytes, the index records ${r.size}` });
          else if (hash.digest('hex') !== r.sha256) problem({ ...refs, problem: 'checksum', detail: 'SHA-256 differs from the one recorded at store time' });
        } catch (err) {
          if (isBlobMissing(err)) problem({ ...refs, problem: 'missing', detail: 'no blob under the indexed key' });
          else problem({ ...refs, problem: 'unreadable', detail: (err as Error).message });
        }
        report.checked++;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  }
  return report;
}

/** Removes blobs that no index row names and that are older than the grace period (the same sweep Cairn runs hourly). */
export function collectGarbage(db: Db, blobs: BlobStore, graceSeconds: number): Promise<number> {
  return sweepOrphans(db, blobs, graceSeconds);
}

/**
 * The index database for a command-line tool: DATABASE_URL when set;
 * otherwise the embedded PostgreSQL of a Cairn running on this data folder,
 * or, when none runs, the embedded one started for the tool.
 */
export async function openIndex(config: Config): Promise<{ db: Db; close(): Promise<void> }> {
  if (config.databaseUrl) {
    const db = connect(config.databaseUrl, 5);
    return { db, close: () => db.destroy() };
  }
  const running = connect(`postgres://postgres:cairn-embedded@127.0.0.1:${config.embeddedPgPort}/cairn`, 5);
  try {
    await running.raw('select 1');
    return { db: running, close: () => running.destroy() };
  } catch {
    await running.destroy();
  }
  const pg = await startEmbeddedPostgres(path.join(config.dataDir, 'pg'), config.embeddedPgPort, (m) => process.stderr.write(`${m}\n`));
  const db = connect(pg.url, 5);
  await migrate(db);
  return {
    db,
    async close() {
      await db.destroy();
      await pg.stop();
    },
  };
}
