import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BENCH_AE, cstorePhase, writeCStoreFiles } from '../../bench/cstore.js';
import { dimseArchive } from './harness.js';

// The bench's C-STORE phase (bench/cstore.ts), against a Cairn listener:
// it counts what the server answered Success to, not what storescu sent.

let a: Awaited<ReturnType<typeof dimseArchive>>;
let dir: string;
beforeAll(async () => {
  a = await dimseArchive([
    { title: BENCH_AE, host: '127.0.0.1', roles: ['uploader'] },
    { title: 'CAIRN_RO', roles: ['clinician'] },
  ]);
  dir = writeCStoreFiles(6, 64, 3, 2);
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await a?.close();
});

describe('the bench C-STORE phase', () => {
  it('stores every file over one association per share and reports instances per second', async () => {
    const r = await cstorePhase({ host: '127.0.0.1', port: a.port, calledAe: 'CAIRN' }, dir);
    expect(r).toMatchObject({ status: 'ok', instances: 6, failed: 0, associations: 2 });
    expect(r.instancesPerSec).toBeGreaterThan(0);
    expect(await a.deps.db('instances').select('sop_instance_uid')).toHaveLength(6);
  });

  it('reports a refused association as a failed phase with nothing counted', async () => {
    const r = await cstorePhase({ host: '127.0.0.1', port: a.port, calledAe: 'NOT_CAIRN' }, dir);
    expect(r).toMatchObject({ status: 'failed', instances: 0, failed: 6, instancesPerSec: null });
    expect(r.error).toMatch(/storescu exit/);
  });
});
