import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { permits, type Principal } from '../access.js';
import { openAudit } from '../audit.js';
import { openBlobStore } from '../blob/open.js';
import { loadConfig } from '../config.js';
import { findUser } from '../db/users.js';
import { newCounters, runImport, type ImportSummary } from '../import/import.js';
import { startProgress, type Totals } from '../import/progress.js';
import { openImportState, stateFileFor } from '../import/state.js';
import { walk } from '../import/walk.js';
import { openIndex } from '../storage-tools.js';
import { fail, readArgs, runCommand, UsageError } from './args.js';

// npm run import -- <folder>… [--workers N] [--resume] [--as <user>]: stores
// every Part-10 file under the folders (DICOMDIR or not) through the
// archive's store path, as STOW does, with a progress display on stderr and
// a summary on stdout. Exit status: 0 all stored or already there, 1 any
// failed, 2 a usage error, 130 stopped by Ctrl-C (run again to continue).
const USAGE = `usage: npm run import -- <folder|file>… [--workers N] [--resume] [--as <user>] [--progress-seconds S]
  --workers N           files in flight at once (default 4)
  --resume              continue an earlier import of the same folders that was stopped
                        (an unfinished one is continued anyway; this says so explicitly)
  --as <user>           store as this local account (npm run user), which must have a role that may store;
                        by default the import principal "cairn-import" with the uploader role
  --progress-seconds S  how often a progress line is printed when stderr is not a terminal (default 10)`;

/** Who an import stores as when --as is not given: its own principal with the role that may store, nothing else. */
const IMPORT_PRINCIPAL: Principal = { sub: 'cairn-import', roles: ['uploader'], clearances: [] };

function wholeNumber(value: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) fail(`--${name} must be a whole number from ${min} to ${max}, not "${value}"\n${USAGE}`);
  return n;
}

function printSummary(s: ImportSummary, stateFile: string): void {
  const out: string[] = [];
  const byPath = (x: { path: string }, y: { path: string }) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0);
  s.failures.sort(byPath);
  s.skips.sort(byPath);
  for (const f of s.failures) out.push(`failed\t${f.path}\t${f.reason}`);
  for (const f of s.skips) out.push(`skipped\t${f.path}\t${f.reason}`);
  if (s.skipsNotListed) out.push(`skipped\t…\t${s.skipsNotListed} more files skipped, not listed`);
  const earlier = s.resumed ? ` (${s.resumed} recorded by an earlier run)` : '';
  out.push(
    `${s.interrupted ? 'stopped' : 'done'}: ${s.files} files, ${(s.bytes / 1024 / 1024).toFixed(1)} MB in ${s.seconds.toFixed(1)} s: ` +
      `stored ${s.stored}, already present ${s.present}${earlier}, skipped ${s.skipped}, failed ${s.failed}`,
  );
  if (s.interrupted) out.push(`stopped before the end; run the same command again to continue (state in ${stateFile})`);
  out.push(
    JSON.stringify({
      files: s.files,
      bytes: s.bytes,
      stored: s.stored,
      alreadyPresent: s.present,
      resumed: s.resumed,
      skipped: s.skipped,
      failed: s.failed,
      dicomdirs: s.dicomdirs,
      interrupted: s.interrupted,
      seconds: Math.round(s.seconds * 10) / 10,
    }),
  );
  process.stdout.write(`${out.join('\n')}\n`);
}

await runCommand(async () => {
  const { values, positionals } = readArgs(
    process.argv.slice(2),
    { workers: { type: 'string' }, resume: { type: 'boolean' }, as: { type: 'string' }, 'progress-seconds': { type: 'string' } },
    USAGE,
  );
  if (!positionals.length) fail(USAGE);
  const roots = positionals.map((p) => path.resolve(p));
  for (const r of roots) if (!fs.existsSync(r)) fail(`${r}: no such file or folder`);
  const workers = wholeNumber(values.workers, 'workers', 4, 1, 64);
  const everySeconds = wholeNumber(values['progress-seconds'], 'progress-seconds', 10, 1, 3600);
  const config = loadConfig();
  // stdout carries the summary; log lines go to stderr.
  const log = pino({ level: config.logLevel, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 2, sync: true }));
  const index = await openIndex(config);
  let code = 0;
  try {
    let principal = IMPORT_PRINCIPAL;
    if (values.as !== undefined) {
      const user = await findUser(index.db, values.as);
      if (!user) fail(`--as ${values.as}: no such local account (npm run user -- list)`);
      principal = { sub: user.username, roles: user.roles, clearances: user.clearances };
      if (!permits(principal, 'store')) fail(`--as ${values.as}: the roles [${user.roles.join(', ')}] may not store`);
    }
    const blobs = await openBlobStore(config);
    const state = openImportState(stateFileFor(config.dataDir, roots));
    if (state.carried) process.stderr.write(`continuing an earlier import of these folders: ${state.carried} files were done\n`);
    else if (values.resume) process.stderr.write('nothing to resume for these folders: importing from the start\n');

    const controller = new AbortController();
    const stop = () => {
      if (controller.signal.aborted) {
        process.stderr.write('\nstopped at once; files in flight were not finished\n');
        process.exit(130);
      }
      process.stderr.write('\nstopping after the files in flight (Ctrl-C again to stop at once)…\n');
      controller.abort();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);

    // A second walk counts the files for the progress display while the import starts at once.
    const totals: Totals = { files: 0, bytes: 0, final: false };
    void (async () => {
      for await (const f of walk(roots)) {
        if (controller.signal.aborted) return;
        if (f.kind === 'file') {
          totals.files++;
          totals.bytes += f.size;
        }
      }
      totals.final = true;
    })().catch(() => undefined);

    const counters = newCounters();
    const progress = startProgress({ tty: process.stderr.isTTY === true, everySeconds, out: process.stderr }, counters, () => totals);
    let summary: ImportSummary;
    try {
      summary = await runImport({
        archive: { db: index.db, blobs, config, log: (entry) => log.warn(entry) },
        audit: openAudit({ config, db: index.db, log }),
        principal,
        // Who ran the command on this machine, beside the principal it stored as.
        auditDetail: { osUser: os.userInfo().username },
        roots,
        workers,
        state,
        signal: controller.signal,
        counters,
      });
    } finally {
      progress.stop();
    }
    printSummary(summary, state.file);
    code = summary.interrupted ? 130 : summary.failed > 0 ? 1 : 0;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    process.stderr.write(`import failed: ${(err as Error).message}\n`);
    code = 1;
  } finally {
    await index.close();
  }
  process.exit(code);
});
