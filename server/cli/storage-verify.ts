import { openBlobStore } from '../blob/open.js';
import { loadConfig } from '../config.js';
import { openIndex, verifyStorage } from '../storage-tools.js';

// npm run storage:verify: every indexed instance's blob exists and matches its
// recorded size and SHA-256. One line per problem, a JSON summary last; the
// exit status is 1 when anything is wrong.
const config = loadConfig();
const index = await openIndex(config);
let failed = true;
try {
  const blobs = await openBlobStore(config);
  const started = Date.now();
  const report = await verifyStorage(index.db, blobs, {
    onProblem: (p) => console.log(`${p.problem}\t${p.sopInstanceUid}\t${p.blobKey}\t${p.detail}`),
  });
  const summary = {
    storage: config.storage,
    checked: report.checked,
    bytes: report.bytes,
    problems: report.problems.length,
    seconds: Math.round((Date.now() - started) / 100) / 10,
  };
  console.log(JSON.stringify(summary));
  failed = report.problems.length > 0;
} finally {
  await index.close();
}
// Exit at once: idle keep-alive sockets to the blob store need not be waited out.
process.exit(failed ? 1 : 0);
