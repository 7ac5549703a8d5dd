import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import supertest from 'supertest';
import { createApp } from '../server/app.js';
import knexFactory from 'knex';
import { createTestArchive, type TestArchive } from './helpers.js';

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive();
});
afterAll(async () => {
  await a?.close();
});

// Probes answer without credentials: load balancers and orchestrators have none.
describe('health probes', () => {
  it('GET /healthz answers 200 while the process runs', async () => {
    const res = await a.anonymous.get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('GET /readyz answers 200 when the database and the blob store answer', async () => {
    const res = await a.anonymous.get('/readyz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ready', database: 'ok', blobs: 'ok' });
  });

  it('GET /readyz answers 503 naming the database when it cannot be reached, while /healthz stays 200', async () => {
    const quiet = { warn() {}, error() {}, debug() {}, deprecate() {} };
    const closed = knexFactory({ client: 'pg', connection: 'postgres://cairn:x@127.0.0.1:1/cairn', pool: { min: 0, max: 1 }, log: quiet });
    try {
      const request = supertest(createApp({ ...a.deps, db: closed }).callback());
      const res = await request.get('/readyz');
      expect(res.status).toBe(503);
      expect(res.body.error).toBe('NotReady');
      expect(res.body.message).toMatch(/^database: (?!ok).+; blob store: ok$/);
      expect((await request.get('/healthz')).status).toBe(200);
    } finally {
      await closed.destroy();
    }
  });
});
