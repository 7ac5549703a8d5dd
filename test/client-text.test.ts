import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestArchive, type TestArchive } from './helpers.js';

// Client text that reaches SQL (search values, audit filters, a user name):
// PostgreSQL refuses a NUL in text, so such input must be refused first, as
// the client's mistake (400 with a JSON body naming the parameter), never
// passed on to fail as a 500.

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive();
});
afterAll(async () => {
  await a?.close();
});

function expectRefused(res: { status: number; body: { message?: string } }, message: RegExp) {
  expect(res.status).toBe(400);
  expect(res.body.message).toMatch(message);
}

describe('QIDO-RS', () => {
  it('refuses a NUL inside a wildcard value with 400 naming the parameter', async () => {
    expectRefused(await a.request.get('/dicom-web/studies?PatientSex=*%00*'), /PatientSex contains the control character U\+0000/);
  });

  it('refuses a person name followed by many NULs', async () => {
    expectRefused(await a.request.get(`/dicom-web/studies?PatientName=DOE${'%00'.repeat(500)}`), /PatientName/);
  });

  it('refuses bytes that are not UTF-8 and control characters, at every level', async () => {
    expectRefused(await a.request.get('/dicom-web/series?Modality=%FF'), /Modality is not valid UTF-8/);
    expectRefused(await a.request.get('/dicom-web/instances?includefield=%ED%A0%80'), /includefield is not valid UTF-8/);
    expectRefused(await a.request.get('/dicom-web/studies?StudyDescription=a%0Ab'), /StudyDescription contains the control character U\+000A/);
  });

  it('still answers a search with non-ASCII text', async () => {
    const res = await a.request.get('/dicom-web/studies?PatientName=M%C3%BCller*');
    expect(res.status).toBe(200);
  });
});

describe('GET /api/audit', () => {
  it('refuses a NUL or bytes that are not UTF-8 in a filter with 400 naming it', async () => {
    expectRefused(await a.request.get('/api/audit?user=%00'), /^user contains the control character U\+0000$/);
    expectRefused(await a.request.get('/api/audit?action=store%00x'), /^action contains/);
    expectRefused(await a.request.get('/api/audit?study=%FF'), /^study is not valid UTF-8$/);
  });

  it('still filters by a plain user', async () => {
    expect((await a.request.get('/api/audit?user=someone')).status).toBe(200);
  });
});

describe('POST /auth/login', () => {
  it('refuses a user name holding a NUL with 400, as a form or as JSON', async () => {
    const form = await a.anonymous.post('/auth/login').type('form').send('username=admin%00&password=x');
    expectRefused(form, /^username contains the control character U\+0000$/);
    expect(form.body.error).toBe('InvalidField');
    const json = await a.anonymous.post('/auth/login').set('Content-Type', 'application/json').send('{"username":"a\\u0000b","password":"x"}');
    expectRefused(json, /^username contains/);
    const surrogate = await a.anonymous.post('/auth/login').set('Content-Type', 'application/json').send('{"username":"a\\ud800","password":"x"}');
    expectRefused(surrogate, /^username is not valid UTF-8$/);
  });
});
