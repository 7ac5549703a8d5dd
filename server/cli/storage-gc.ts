import { parseArgs } from 'node:util';
import { openBlobStore } from '../blob/open.js';
import { loadConfig } from '../config.js';
import { collectGarbage, openIndex } from '../storage-tools.js';

// npm run storage:gc [-- --grace-seconds N]: removes blobs that no index row
// names and that are older than the grace period (ORPHAN_GRACE_SECONDS by
// default). The grace keeps blobs of stores still in flight, whose index rows
// are not committed yet, on any replica.
const { values } = parseArgs({ options: { 'grace-seconds': { type: 'string' } } });
const config = loadConfig();
const grace = values['grace-seconds'] !== undefined ? Number(values['grace-seconds']) : config.orphanGraceSeconds;
if (!Number.isInteger(grace) || grace < 0) throw new Error(`--grace-seconds must be a whole number of seconds, not ${values['grace-seconds']}`);
// A blob is written before its index row commits: a grace shorter than the
// longest store in flight could remove a blob that is about to be indexed.
if (grace < 300) console.error(`warning: a grace of ${grace} s may remove blobs of stores still in flight; use it only with no Cairn writing`);
const index = await openIndex(config);
try {
  const blobs = await openBlobStore(config);
  const removed = await collectGarbage(index.db, blobs, grace);
  console.log(JSON.stringify({ storage: config.storage, graceSeconds: grace, removed }));
} finally {
  await index.close();
}
process.exit(0);
