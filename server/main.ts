import { archiveContext, purgeRejected, sweepOrphans } from './archive.js';
import { newCaller } from './access.js';
import { openAudit, recordAudit } from './audit.js';
import { createApp } from './app.js';
import { boot } from './boot.js';
import { loadConfig } from './config.js';
import { EmbeddedPgError } from './db/embedded-pg.js';
import { startExportRunner } from './export/runner.js';
import { startCollectionGrower } from './collections/grow.js';
import { countUsers } from './db/users.js';
import { createLogger } from './log.js';

const config = loadConfig();
const log = createLogger(config);
// A fault that escapes every handler is logged where operators look, then the
// process exits so a supervisor (or the operator) starts a clean one.
process.on('uncaughtException', (err) => {
  log.fatal({ err }, 'uncaught exception');
  log.flush();
  process.exit(1);
});
process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled promise rejection'));
const deps = await boot(config, log).catch((err: unknown) => {
  // Something only the operator can fix (a folder the database user may not
  // enter, a port taken): said in one plain sentence, not as a stack.
  if (!(err instanceof EmbeddedPgError)) throw err;
  log.flush();
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
if (!config.auth.enabled) {
  log.warn('authentication is OFF (AUTH=off): every caller acts as an administrator and every response says so; for local experiments only');
} else if ((await countUsers(deps.db)) === 0) {
  // Never a default password: the first administrator is made by the operator.
  log.warn(
    { command: 'npm run user -- add <name> --roles admin' },
    'no user accounts yet; create the first administrator with: npm run user -- add <name> --roles admin',
  );
}
const app = createApp(deps);
const server = app.listen(config.port, config.host, () => {
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  log.info({ url: `http://${config.host}:${port}`, dicomweb: `http://${config.host}:${port}/dicom-web` }, 'listening');
});
server.keepAliveTimeout = 65_000;
// The DICOM upper-layer listener (C-STORE, C-FIND, C-GET, C-MOVE), only when DIMSE_PORT is set.
// The DIMSE adapter (and dcmjs-dimse, about 30 MB resident) is loaded only when its listener is configured.
const dimse = config.dimse.port === undefined ? undefined : await (await import('./dimse/listener.js')).startDimse(deps);

// Orphan blobs (a crash between blob write and index commit) go once at start
// and hourly after, once older than the grace period, from the folders of the
// last two days (npm run storage:gc looks everywhere).
const sweep = () =>
  sweepOrphans(deps.db, deps.blobs, config.orphanGraceSeconds, 48)
    .then((n) => n && log.info({ removed: n }, 'orphan blobs removed'))
    .catch((err) => log.warn({ err }, 'orphan sweep failed'));
void sweep();
const timer = setInterval(sweep, 3600_000);
timer.unref();

// Push jobs to other archives (server/export/runner.ts): every replica runs them, each job held by one at a time.
const exporter = startExportRunner(deps);
// Live query collections follow the change sequence (server/collections/grow.ts): every replica runs one, each collection held by one at a time.
const grower = startCollectionGrower(deps);
// Rejected instances (IHE IOCM) are deleted for good once REJECTION_RETENTION_DAYS
// have passed since their rejection: at start and hourly, by one replica at a
// time (the purge holds an advisory lock; the others skip their turn), audited
// as the system's own deletion.
const audit = openAudit(deps);
const purge = async () => {
  const days = config.rejectionRetentionDays;
  if (days === undefined) return;
  const system = newCaller({ sub: 'cairn', roles: ['admin'], clearances: [] }, { protocol: 'cli', command: 'rejection-purge' });
  try {
    const purged = await purgeRejected(archiveContext(deps), system, days);
    if (!purged) return;
    log.info({ purged, retentionDays: days }, 'rejected instances deleted after their retention period');
    await recordAudit(audit, system, 'rejection-purge', 'success', { purged, retentionDays: days });
  } catch (err) {
    log.warn({ err }, 'purge of rejected instances failed');
  }
};
void purge();
const purgeTimer = setInterval(purge, 3600_000);
purgeTimer.unref();

let stopping = false;
async function stop(signal: string) {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  clearInterval(timer);
  clearInterval(purgeTimer);
  // Requests in flight (a STOW halfway through its parts) finish before the
  // database goes away; after a grace period the rest are cut off.
  const drained = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const grace = setTimeout(() => server.closeAllConnections(), 10_000);
  // The export runner finishes the batch in hand and gives its job up, for another replica or the next start.
  await Promise.all([drained, dimse?.close(10_000), exporter.stop(), grower.stop()]);
  clearTimeout(grace);
  await deps.shutdown();
  log.flush();
  process.exit(0);
}
// This process owns its signals: the embedded PostgreSQL package installs an
// exit hook that would stop the database and exit at once on SIGINT/SIGTERM,
// cutting the drain above short. stop() stops the database itself, last.
process.removeAllListeners('SIGINT');
process.removeAllListeners('SIGTERM');
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
