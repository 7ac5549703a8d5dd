import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import * as m20261201000000 from '../../migrations/20261201000000_index.js';
import * as m20261201010000 from '../../migrations/20261201010000_name_group_indexes.js';
import * as m20261201020000 from '../../migrations/20261201020000_attribute_text.js';
import * as m20261201030000 from '../../migrations/20261201030000_access.js';
import * as m20261201040000 from '../../migrations/20261201040000_audit_any_protocol.js';
import * as m20261201041000 from '../../migrations/20261201041000_changes.js';
import * as m20261203090000 from '../../migrations/20261203090000_resolved_vrs.js';
import * as m20261203100000 from '../../migrations/20261203100000_rejection.js';
import * as m20261203110000 from '../../migrations/20261203110000_change_labels.js';
import * as m20261203140000 from '../../migrations/20261203140000_sessions.js';
import * as m20261203130000 from '../../migrations/20261203130000_deid_uids.js';
import * as m20261203150000 from '../../migrations/20261203150000_aes.js';
import * as m20261203160000 from '../../migrations/20261203160000_collections.js';
import * as m20261203170000 from '../../migrations/20261203170000_export.js';
import * as m20261203180000 from '../../migrations/20261203180000_change_feed_iocm.js';
import * as m20261203191000 from '../../migrations/20261203191000_collection_queries.js';

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
  '20261201040000_audit_any_protocol': m20261201040000,
  '20261201041000_changes': m20261201041000,
  '20261203090000_resolved_vrs': m20261203090000,
  '20261203100000_rejection': m20261203100000,
  '20261203110000_change_labels': m20261203110000,
  '20261203140000_sessions': m20261203140000,
  '20261203130000_deid_uids': m20261203130000,
  '20261203150000_aes': m20261203150000,
  '20261203160000_collections': m20261203160000,
  '20261203170000_export': m20261203170000,
  '20261203180000_change_feed_iocm': m20261203180000,
  '20261203191000_collection_queries': m20261203191000,
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

// The embedded PostgreSQL (started when there is no DATABASE_URL) lives in embedded-pg.ts.
export { bundledPostgres, startEmbeddedPostgres, type EmbeddedPg } from './embedded-pg.js';

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
