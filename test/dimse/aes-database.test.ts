import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { saveAe } from '../../server/db/aes.js';
import { createAeDirectory, parseAes } from '../../server/dimse/aes.js';
import { fixturesDir, multipartBody, sample } from '../helpers.js';
import { dcmtk, dimseArchive, startStorescp, type Storescp } from './harness.js';

// Calling AEs registered in the `aes` table (no DIMSE_AES): what /api/aes
// changes is what the next association is checked against.

type Archive = Awaited<ReturnType<typeof dimseArchive>>;
let a: Archive;
let dest: Storescp;
const CT_STUDY = '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322';

beforeAll(async () => {
  // Read afresh at every association, so each test sees its own changes at once.
  a = await dimseArchive([], {}, { aesSource: 'database', aesRefreshSeconds: 0 });
  const { body, contentType } = multipartBody([sample('CT_small.dcm')]);
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body)).status).toBe(200);
  dest = await startStorescp('WS1');
});
afterAll(async () => {
  dest?.stop();
  await a?.close();
});

const echo = (ae: string) => dcmtk('echoscu', ['-aet', ae, '-aec', 'CAIRN', '127.0.0.1', String(a.port)]);
const move = (ae: string, dest: string) =>
  dcmtk('movescu', [
    '-v',
    '-S',
    '-aem',
    dest,
    '-k',
    'QueryRetrieveLevel=STUDY',
    '-k',
    `StudyInstanceUID=${CT_STUDY}`,
    '-aet',
    ae,
    '-aec',
    'CAIRN',
    '127.0.0.1',
    String(a.port),
  ]);

describe('AEs from the database', () => {
  it('refuses an AE until it is registered, and again once it is removed, each refusal audited', async () => {
    expect((await echo('CT9')).code).not.toBe(0);
    expect((await a.request.put('/api/aes/CT9').send({ host: '127.0.0.1', roles: ['uploader'] })).status).toBe(201);
    expect((await echo('CT9')).code).toBe(0);
    expect((await a.request.delete('/api/aes/CT9')).status).toBe(204);
    const refused = await echo('CT9');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Association Rejected/i);
    const rows = await a.deps.db('audit_events').where({ protocol: 'dimse', action: 'login-failed' });
    expect(rows.filter((r) => r.detail?.callingAe === 'CT9')).toHaveLength(2);
  });

  it('refuses a registered AE calling from an address other than its own', async () => {
    expect((await a.request.put('/api/aes/CT8').send({ host: '10.9.9.9', roles: ['uploader'] })).status).toBe(201);
    expect((await echo('CT8')).code).not.toBe(0);
    expect((await a.request.put('/api/aes/CT8').send({ host: '127.0.0.1', roles: ['uploader'] })).status).toBe(200);
    expect((await echo('CT8')).code).toBe(0);
  });

  it('acts under the roles in the table: stores as an uploader, and may not retrieve', async () => {
    expect((await a.request.put('/api/aes/MOD1').send({ roles: ['uploader'] })).status).toBe(201);
    const store = await dcmtk('storescu', ['-aet', 'MOD1', '-aec', 'CAIRN', '127.0.0.1', String(a.port), path.join(fixturesDir, 'MR_small.dcm')]);
    expect(store.code, store.stderr).toBe(0);
    expect(await a.deps.db('audit_events').where({ protocol: 'dimse', action: 'store', sub: 'ae:MOD1', outcome: 'success' }).first()).toBeDefined();
    expect((await a.request.put('/api/aes/WS1').send({ host: '127.0.0.1', port: dest.port, moveDestination: true })).status).toBe(201);
    expect((await move('MOD1', 'WS1')).stderr).toMatch(/0x0?124|NotAuthorized/i);
  });

  it('moves only to an AE registered as a move destination', async () => {
    expect((await a.request.put('/api/aes/VIEW1').send({ roles: ['clinician'] })).status).toBe(201);
    expect((await a.request.put('/api/aes/WS1').send({ host: '127.0.0.1', port: dest.port, moveDestination: false })).status).toBe(200);
    // PS3.4 Table C.4-2: 0xA801, move destination unknown.
    expect((await move('VIEW1', 'WS1')).stderr).toMatch(/0xa801|MoveDestinationUnknown/i);
    expect((await a.request.put('/api/aes/WS1').send({ host: '127.0.0.1', port: dest.port, moveDestination: true })).status).toBe(200);
    const moved = await move('VIEW1', 'WS1');
    expect(moved.stderr).toMatch(/Final Move Response \(Success\)/);
  });

  it('gives unregistered callers the principal of "*" when it is registered', async () => {
    expect((await echo('ANYONE')).code).not.toBe(0);
    expect((await a.request.put('/api/aes/*').send({ roles: ['clinician'] })).status).toBe(201);
    expect((await echo('ANYONE')).code).toBe(0);
    expect((await a.request.delete('/api/aes/*')).status).toBe(204);
  });
});

describe('the registry of one replica', () => {
  it('warns at start when no AE is registered, saying how to register one', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (l: string) => lines.push(l) });
    const empty = await dimseArchive([], { log }, { aesSource: 'database' });
    await empty.close();
    const warned = lines.map((l) => JSON.parse(l)).find((l) => /no calling AE is registered/.test(l.msg));
    expect(warned?.command).toMatch(/npm run ae -- add/);
    lines.length = 0;
    const one = await dimseArchive([{ title: 'CT1', roles: ['uploader'] }], { log });
    await one.close();
    expect(lines.filter((l) => /registers no calling AE|no calling AE is registered/.test(l))).toEqual([]);
  });

  it('reads the table once per interval, so an association costs no query, and sees a removal after at most that long', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const directory = createAeDirectory(a.deps.db, { aesSource: 'database', registry: parseAes('[]'), aesRefreshSeconds: 5 });
      await saveAe(a.deps.db, { title: 'CACHED', host: null, port: null, roles: ['clinician'], clearances: [], move_destination: false });
      let queries = 0;
      const count = () => queries++;
      a.deps.db.on('query', count);
      expect((await directory.current()).aes.has('CACHED')).toBe(true);
      await a.deps.db('aes').where({ title: 'CACHED' }).del();
      queries = 0;
      vi.setSystemTime(Date.now() + 4_000);
      expect((await directory.current()).aes.has('CACHED')).toBe(true);
      expect(queries).toBe(0);
      vi.setSystemTime(Date.now() + 1_000);
      expect((await directory.current()).aes.has('CACHED')).toBe(false);
      expect(queries).toBe(1);
      // A clock stepped back makes what was read stale, not longer-lived.
      await saveAe(a.deps.db, { title: 'CACHED', host: null, port: null, roles: [], clearances: [], move_destination: false });
      vi.setSystemTime(Date.now() - 60_000);
      expect((await directory.current()).aes.has('CACHED')).toBe(true);
      a.deps.db.off('query', count);
    } finally {
      vi.useRealTimers();
    }
  });

  it('lets an AE just added in at once, and a removed one only once the interval has passed', async () => {
    const slow = await dimseArchive([], {}, { aesSource: 'database', aesRefreshSeconds: 300 });
    try {
      const echoSlow = (ae: string) => dcmtk('echoscu', ['-aet', ae, '-aec', 'CAIRN', '127.0.0.1', String(slow.port)]);
      expect((await echoSlow('NEW1')).code).not.toBe(0);
      expect((await slow.request.put('/api/aes/NEW1').send({ roles: ['uploader'] })).status).toBe(201);
      // Refused by the registry as remembered, then read again before refusing.
      expect((await echoSlow('NEW1')).code).toBe(0);
      expect((await slow.request.delete('/api/aes/NEW1')).status).toBe(204);
      // Still remembered: refused from its next association after at most DIMSE_AES_REFRESH_SECONDS.
      expect((await echoSlow('NEW1')).code).toBe(0);
    } finally {
      await slow.close();
    }
  });

  it('from DIMSE_AES, never reads the table', async () => {
    const directory = createAeDirectory(a.deps.db, { aesSource: 'configuration', registry: parseAes('[{"title":"FILE1"}]'), aesRefreshSeconds: 0 });
    let queries = 0;
    const count = () => queries++;
    a.deps.db.on('query', count);
    expect([...(await directory.current()).aes.keys()]).toEqual(['FILE1']);
    a.deps.db.off('query', count);
    expect(queries).toBe(0);
  });
});
