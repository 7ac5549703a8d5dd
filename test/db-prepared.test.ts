import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepared } from '../server/db/knex.js';
import { createTestArchive, type TestArchive } from './helpers.js';

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive();
});
afterAll(async () => {
  await a?.close();
});

describe('prepared statements on the knex pool', () => {
  it('runs the statement under its name, with parameters', async () => {
    // pg_prepared_statements lists the statements of the session running the query, this one included.
    const rows = await prepared<{ name: string; n: number }>(
      a.deps.db,
      'cairn_test_self',
      'select name, $2::int + 1 as n from pg_prepared_statements where name = $1',
      ['cairn_test_self', 41],
    );
    expect(rows).toEqual([{ name: 'cairn_test_self', n: 42 }]);
  });

  it('refuses to run inside a transaction (it would run on another connection)', async () => {
    await a.deps.db.transaction(async (trx) => {
      await expect(prepared(trx, 'cairn_test_trx', 'select 1 as x', [])).rejects.toThrow(/not inside a transaction/);
    });
  });

  it('hands the connection back when the statement fails', async () => {
    // More failures than the pool has connections: a connection kept by a failure would make the last query wait.
    for (let i = 0; i < 12; i++) {
      await expect(prepared(a.deps.db, 'cairn_test_fails', 'select 1 / $1::int as x', [0])).rejects.toThrow(/division by zero/);
    }
    expect(await prepared(a.deps.db, 'cairn_test_fails', 'select 1 / $1::int as x', [1])).toEqual([{ x: 1 }]);
  });
});
