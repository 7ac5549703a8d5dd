import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
});
