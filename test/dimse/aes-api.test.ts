import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testConfig } from '../../server/config.js';
import { parseDeidViews } from '../../server/deid/settings.js';
import { parseAes } from '../../server/dimse/aes.js';
import { createTestArchive, type TestArchive } from '../helpers.js';

// /api/aes: calling AEs managed by administrators, in the `aes` table.

let a: TestArchive;
let configured: TestArchive;
beforeAll(async () => {
  a = await createTestArchive();
  configured = await createTestArchive({
    dimse: {
      ...testConfig().dimse,
      aesSource: 'configuration',
      registry: parseAes('[{"title":"PACS","host":"10.0.0.9","port":104,"roles":["uploader"]},{"title":"*","roles":["clinician"]}]'),
    },
  });
});
afterAll(async () => {
  await a?.close();
  await configured?.close();
});

const CT1 = { host: '10.1.2.3', port: 104, roles: ['uploader'], clearances: ['vip'] };

describe('/api/aes', () => {
  it('registers an AE (201), shows it, replaces it (200) and removes it (204), each change audited', async () => {
    const added = await a.request.put('/api/aes/CT1').send(CT1);
    expect(added.status).toBe(201);
    expect(added.body).toEqual({ title: 'CT1', ...CT1, moveDestination: false });
    expect((await a.request.get('/api/aes')).body).toEqual({ source: 'database', aes: [{ title: 'CT1', ...CT1, moveDestination: false }] });
    const replaced = await a.request.put('/api/aes/CT1').send({ ...CT1, roles: ['uploader', 'clinician'], moveDestination: true });
    expect(replaced.status).toBe(200);
    expect((await a.request.get('/api/aes/CT1')).body).toMatchObject({ roles: ['uploader', 'clinician'], moveDestination: true });
    expect((await a.request.delete('/api/aes/CT1')).status).toBe(204);
    const gone = await a.request.get('/api/aes/CT1');
    expect(gone.status).toBe(404);
    expect(gone.body.error).toBe('AeNotFound');
    const rows = await a.deps.db('audit_events').where({ action: 'ae-change' }).orderBy('id');
    expect(rows.map((r) => [r.sub, r.status, r.detail.change])).toEqual([
      ['test-admin', 201, 'add'],
      ['test-admin', 200, 'set'],
      ['test-admin', 204, 'remove'],
    ]);
    expect(rows[1].detail.before).toMatchObject({ roles: ['uploader'], moveDestination: false });
    expect(rows[1].detail.after).toMatchObject({ roles: ['uploader', 'clinician'], moveDestination: true });
  });

  it('takes a title with spaces, trimmed of the padding PS3.5 makes insignificant', async () => {
    expect((await a.request.put('/api/aes/%20ULTRA%20SOUND%20').send({ roles: ['uploader'] })).status).toBe(201);
    expect((await a.request.get('/api/aes/ULTRA%20SOUND')).body).toMatchObject({ title: 'ULTRA SOUND', host: null, port: null });
    expect((await a.request.delete('/api/aes/ULTRA%20SOUND')).status).toBe(204);
  });

  it('registers "*", the principal of unregistered callers, with roles and clearances only', async () => {
    expect((await a.request.put('/api/aes/*').send({ roles: ['clinician'] })).status).toBe(201);
    const bad = await a.request.put('/api/aes/*').send({ roles: ['clinician'], host: '10.0.0.1' });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/roles and clearances only/);
    expect((await a.request.delete('/api/aes/*')).status).toBe(204);
  });

  it('refuses a bad title, host, port, role, clearance or field with a 400 saying which', async () => {
    const cases: [string, unknown, string, RegExp][] = [
      ['SEVENTEEN_CHARS_X', CT1, 'InvalidAeTitle', /1 to 16 characters/],
      ['A%5CB', CT1, 'InvalidAeTitle', /backslash/],
      ['%20%20', CT1, 'InvalidAeTitle', /1 to 16/],
      ['CT2', { ...CT1, host: 'ct.example.org' }, 'InvalidAe', /host: must be an IPv4 or IPv6 address/],
      ['CT2', { ...CT1, host: '10.1.2.300' }, 'InvalidAe', /host/],
      ['CT2', { ...CT1, port: 0 }, 'InvalidAe', /port/],
      ['CT2', { ...CT1, port: 65536 }, 'InvalidAe', /port/],
      ['CT2', { ...CT1, port: '104' }, 'InvalidAe', /port/],
      ['CT2', { ...CT1, roles: ['boss'] }, 'InvalidAe', /roles\.0/],
      ['CT2', { ...CT1, roles: 'uploader' }, 'InvalidAe', /roles/],
      ['CT2', { ...CT1, clearances: ['no spaces'] }, 'InvalidAe', /clearances\.0/],
      ['CT2', { ...CT1, aeTitle: 'CT2' }, 'InvalidAe', /aeTitle/],
      ['CT2', { roles: ['clinician'], moveDestination: true }, 'InvalidAe', /move destination needs host and port/],
    ];
    for (const [title, body, error, message] of cases) {
      const res = await a.request.put(`/api/aes/${title}`).send(body as object);
      expect(res.status, `${title} ${JSON.stringify(body)}`).toBe(400);
      expect(res.body.error).toBe(error);
      expect(res.body.message).toMatch(message);
    }
    expect(await a.deps.db('aes').where({ title: 'CT2' }).first()).toBeUndefined();
    const malformed = await a.request.put('/api/aes/CT2').set('Content-Type', 'application/json').send('{"roles":');
    expect(malformed.status).toBe(400);
    expect((await a.request.get('/api/aes/A%5CB')).status).toBe(400);
  });

  it('is for administrators only, and needs credentials', async () => {
    for (const roles of [['clinician'], ['auditor'], ['uploader']] as const) {
      expect((await a.as({ roles }).get('/api/aes')).status).toBe(403);
      expect((await a.as({ roles }).put('/api/aes/CT3').send(CT1)).status).toBe(403);
    }
    expect((await a.anonymous.get('/api/aes')).status).toBe(401);
    expect((await a.anonymous.delete('/api/aes/CT3')).status).toBe(401);
    expect(await a.deps.db('aes').where({ title: 'CT3' }).first()).toBeUndefined();
  });

  it('a DELETE of an AE that is not registered is a 404', async () => {
    const res = await a.request.delete('/api/aes/NOBODY');
    expect(res.status).toBe(404);
    expect(res.body.error).toBe('AeNotFound');
  });
});

describe('/api/aes when DIMSE_AES configures the registry', () => {
  it('shows the configured AEs, "*" included', async () => {
    const res = await configured.request.get('/api/aes');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      source: 'configuration',
      aes: [
        { title: 'PACS', host: '10.0.0.9', port: 104, roles: ['uploader'], clearances: [], moveDestination: true },
        { title: '*', host: null, port: null, roles: ['clinician'], clearances: [], moveDestination: false },
      ],
    });
    expect((await configured.request.get('/api/aes/PACS')).body.port).toBe(104);
  });

  it('refuses a change with 409, saying where the registry is set', async () => {
    const put = await configured.request.put('/api/aes/CT1').send(CT1);
    expect(put.status).toBe(409);
    expect(put.body.error).toBe('AeRegistryConfigured');
    expect(put.body.message).toMatch(/DIMSE_AES/);
    expect((await configured.request.delete('/api/aes/PACS')).status).toBe(409);
    expect(await configured.deps.db('aes').select('title')).toEqual([]);
  });

  it('warns, in the answer, when the AE will be served de-identified data', async () => {
    const deid = { key: 'a-test-deid-key-that-is-long-enough-0123', views: parseDeidViews('researcher=modified-dates', undefined) };
    const withViews = await createTestArchive({ deid });
    try {
      const research = await withViews.request.put('/api/aes/RESEARCH').send({ roles: ['researcher'] });
      expect(research.status).toBe(201);
      expect(research.body.title).toBe('RESEARCH');
      expect(research.body.warning).toMatch(/de-identified view/);
      expect(research.body.warning).toMatch(/C-GET and C-MOVE send de-identified data/);
      const clinical = await withViews.request.put('/api/aes/WS1').send({ roles: ['clinician'] });
      expect(clinical.status).toBe(201);
      expect(clinical.body).not.toHaveProperty('warning');
      // What is stored and shown afterwards is the AE alone.
      expect((await withViews.request.get('/api/aes/RESEARCH')).body).not.toHaveProperty('warning');
    } finally {
      await withViews.close();
    }
  });
});
