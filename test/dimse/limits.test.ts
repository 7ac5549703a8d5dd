import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { dcmtk, dimseArchive } from './harness.js';

type Archive = Awaited<ReturnType<typeof dimseArchive>>;
let a: Archive;

beforeAll(async () => {
  a = await dimseArchive([{ title: 'VIEWER', roles: ['clinician'] }], {}, { maxAssociations: 1, idleTimeoutSeconds: 1 });
});
afterAll(async () => {
  await a?.close();
});

const echo = () => dcmtk('echoscu', ['-aet', 'VIEWER', '-aec', 'CAIRN', '127.0.0.1', String(a.port)]);

it('rejects an association beyond DIMSE_MAX_ASSOCIATIONS as a transient local limit, and takes it once one ends', async () => {
  const held = net.connect(a.port, '127.0.0.1');
  await new Promise((resolve) => held.once('connect', resolve));
  const refused = await echo();
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toMatch(/Local Limit Exceeded|Rejected/i);
  held.destroy();
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect((await echo()).code).toBe(0);
});

it('closes a connection that sends nothing for DIMSE_IDLE_TIMEOUT_SECONDS', async () => {
  const idle = net.connect(a.port, '127.0.0.1');
  const closed = new Promise<number>((resolve) => idle.once('close', () => resolve(Date.now())));
  const start = Date.now();
  expect((await closed) - start).toBeLessThan(5000);
});
