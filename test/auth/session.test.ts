import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { hashPassword } from '../../server/auth/passwords.js';
import { saveUser } from '../../server/db/users.js';
import { createTestArchive, multipartBody, type TestArchive } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';

// The login page and its session cookie: local accounts with
// bcrypt hashes, an HttpOnly SameSite=Strict cookie carrying the same kind of
// JWT as a bearer token, accepted for reads, and a CSRF token required for
// every state-changing request made with it.

let a: TestArchive;
const PASSWORD = 'correct horse battery staple';

beforeAll(async () => {
  a = await createTestArchive();
  await saveUser(a.deps.db, { username: 'alice', password_hash: await hashPassword(PASSWORD, 4), roles: ['clinician', 'uploader'], clearances: ['vip'] });
});
afterAll(async () => {
  await a?.close();
});

function cookies(res: { headers: Record<string, unknown> }): string[] {
  return (res.headers['set-cookie'] as string[] | undefined) ?? [];
}

async function login(agent = supertest.agent(a.app.callback())) {
  const res = await agent.post('/auth/login').type('form').send({ username: 'alice', password: PASSWORD, next: '/viewer?StudyInstanceUIDs=1.2.3' });
  const csrf = /cairn_csrf=([^;]+)/.exec(cookies(res).join('\n'))?.[1];
  return { res, agent, csrf };
}

describe('login page', () => {
  it('GET /login is an HTML form posting to /auth/login', async () => {
    const res = await a.anonymous.get('/login?next=/viewer');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.text).toContain('action="/auth/login"');
    expect(res.text).toContain('value="/viewer"');
  });

  it('a good password sets an HttpOnly, SameSite=Strict session cookie and a readable CSRF cookie, then redirects to next', async () => {
    const { res } = await login();
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/viewer?StudyInstanceUIDs=1.2.3');
    const session = cookies(res).find((c) => c.startsWith('cairn_session='))!;
    expect(session).toMatch(/httponly/i);
    expect(session).toMatch(/samesite=strict/i);
    expect(session).toMatch(/path=\//i);
    const csrf = cookies(res).find((c) => c.startsWith('cairn_csrf='))!;
    expect(csrf).not.toMatch(/httponly/i);
    expect(csrf).toMatch(/samesite=strict/i);
  });

  it('a login posted from another origin is refused', async () => {
    const res = await a.anonymous.post('/auth/login').set('Origin', 'https://evil.example').type('form').send({ username: 'alice', password: PASSWORD });
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('CrossOriginLogin');
    expect(cookies(res).some((c) => c.startsWith('cairn_session='))).toBe(false);
  });

  it('an uploader is sent to the upload page rather than the study list it may not search', async () => {
    await saveUser(a.deps.db, { username: 'gw', password_hash: await hashPassword(PASSWORD, 4), roles: ['uploader'], clearances: [] });
    const res = await a.anonymous.post('/auth/login').type('form').send({ username: 'gw', password: PASSWORD, next: '/' });
    expect(res.headers.location).toBe('/upload');
  });

  it('next may only be a path on this server', async () => {
    for (const next of ['//evil.example/x', 'https://evil.example/', '/\\evil.example']) {
      const res = await a.anonymous.post('/auth/login').type('form').send({ username: 'alice', password: PASSWORD, next });
      expect(res.headers.location, next).toBe('/');
    }
  });

  it('a wrong password or unknown user goes back to the form with an error, sets no session, and is audited as login-failed', async () => {
    for (const [username, password] of [
      ['alice', 'wrong password!'],
      ['nobody', PASSWORD],
    ]) {
      const res = await a.anonymous.post('/auth/login').type('form').send({ username, password });
      expect(res.status).toBe(303);
      expect(res.headers.location).toMatch(/^\/login\?error=1/);
      expect(cookies(res).some((c) => c.startsWith('cairn_session='))).toBe(false);
    }
    const rows = await a.deps.db('audit_events').where({ action: 'login-failed' }).whereNotNull('sub').orderBy('id');
    expect(rows.map((r) => r.sub)).toEqual(['alice', 'nobody']);
    expect(rows.map((r) => r.outcome)).toEqual(['failure', 'failure']);
  });

  it('JSON login answers with the identity and the CSRF token, or 401', async () => {
    const ok = await a.anonymous.post('/auth/login').send({ username: 'alice', password: PASSWORD });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ sub: 'alice', roles: ['clinician', 'uploader'], clearances: ['vip'] });
    expect(typeof ok.body.csrfToken).toBe('string');
    const bad = await a.anonymous.post('/auth/login').send({ username: 'alice', password: 'nope nope nope' });
    expect(bad.status).toBe(401);
    expect(bad.body.error).toBe('LoginFailed');
  });

  it('a successful login is audited', async () => {
    await login();
    const row = await a.deps.db('audit_events').where({ action: 'login', sub: 'alice' }).first();
    expect(row).toMatchObject({ outcome: 'success', status: 303 });
  });
});

describe('guessing passwords', () => {
  it('ten failures lock the user name for a quarter of an hour, even with the right password; others are not affected', async () => {
    await saveUser(a.deps.db, { username: 'dave', password_hash: await hashPassword(PASSWORD, 4), roles: ['clinician'], clearances: [] });
    for (let i = 0; i < 10; i++) expect((await a.anonymous.post('/auth/login').send({ username: 'dave', password: `guess number ${i}` })).status).toBe(401);
    const locked = await a.anonymous.post('/auth/login').send({ username: 'dave', password: PASSWORD });
    expect(locked.status).toBe(429);
    expect(locked.headers['retry-after']).toBe('900');
    const form = await a.anonymous.post('/auth/login').type('form').send({ username: 'dave', password: PASSWORD });
    expect(form.headers.location).toMatch(/^\/login\?error=locked/);
    expect((await a.anonymous.get('/login?error=locked')).text).toContain('Too many failed logins');
    expect((await a.anonymous.post('/auth/login').send({ username: 'alice', password: PASSWORD })).status).toBe(200);
  });
});

describe('the session cookie', () => {
  it('follows the account: roles changed or account removed, the session ends within the check interval', async () => {
    const interval = a.deps.config.auth.revocationCheckSeconds * 1000;
    await saveUser(a.deps.db, { username: 'erin', password_hash: await hashPassword(PASSWORD, 4), roles: ['clinician'], clearances: [] });
    for (const change of [
      () => saveUser(a.deps.db, { username: 'erin', password_hash: 'x', roles: ['auditor'], clearances: [] }),
      () => a.deps.db('users').where({ username: 'erin' }).del(),
    ]) {
      await saveUser(a.deps.db, { username: 'erin', password_hash: await hashPassword(PASSWORD, 4), roles: ['clinician'], clearances: [] });
      const agent = supertest.agent(a.app.callback());
      await agent.post('/auth/login').type('form').send({ username: 'erin', password: PASSWORD });
      expect((await agent.get('/dicom-web/studies')).status).toBe(200);
      await change();
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + interval + 1 });
      try {
        const res = await agent.get('/dicom-web/studies');
        expect(res.status).toBe(401);
        expect(res.body.message).toMatch(/session has ended/);
      } finally {
        vi.useRealTimers();
      }
    }
  });

  it('authorises reads', async () => {
    const { agent } = await login();
    const res = await agent.get('/dicom-web/studies');
    expect(res.status).toBe(200);
    const me = await agent.get('/auth/me');
    expect(me.body).toMatchObject({ sub: 'alice', via: 'cookie' });
  });

  it('does not authorise a state-changing request without the CSRF token', async () => {
    const { agent } = await login();
    const { body, contentType } = multipartBody([syntheticInstance().bytes]);
    const res = await agent.post('/dicom-web/studies').set('Content-Type', contentType).send(body);
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('CsrfTokenInvalid');
    const wrong = await agent.post('/dicom-web/studies').set('Content-Type', contentType).set('X-CSRF-Token', 'guess').send(body);
    expect(wrong.status).toBe(403);
    expect(await a.deps.db('instances').count('* as n').first()).toMatchObject({ n: 0 });
  });

  it("authorises a state-changing request with the session's CSRF token", async () => {
    const { agent, csrf } = await login();
    const { body, contentType } = multipartBody([syntheticInstance().bytes]);
    const res = await agent.post('/dicom-web/studies').set('Content-Type', contentType).set('X-CSRF-Token', csrf!).send(body);
    expect(res.status).toBe(200);
  });

  it('a CSRF token of another session does not do', async () => {
    const first = await login();
    const second = await login();
    expect(first.csrf).not.toBe(second.csrf);
    const { body, contentType } = multipartBody([syntheticInstance().bytes]);
    const res = await second.agent.post('/dicom-web/studies').set('Content-Type', contentType).set('X-CSRF-Token', first.csrf!).send(body);
    expect(res.status).toBe(403);
  });

  it('logout clears the cookies, and the browser is then anonymous', async () => {
    const { agent } = await login();
    const out = await agent.post('/auth/logout');
    expect(out.status).toBe(303);
    expect(out.headers.location).toBe('/login');
    expect(cookies(out).find((c) => c.startsWith('cairn_session='))).toMatch(/expires=Thu, 01 Jan 1970/i);
    expect((await agent.get('/dicom-web/studies')).status).toBe(401);
  });

  it('a forged cookie is refused like a forged bearer token', async () => {
    const res = await a.anonymous.get('/dicom-web/studies').set('Cookie', 'cairn_session=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.');
    expect(res.status).toBe(401);
  });
});

describe('AUTH=off', () => {
  let off: TestArchive;
  beforeAll(async () => {
    off = await createTestArchive({ auth: { enabled: false } });
  });
  afterAll(async () => {
    await off?.close();
  });

  it('lets requests without credentials in, and every response carries a Warning saying so', async () => {
    const res = await off.anonymous.get('/dicom-web/studies');
    expect(res.status).toBe(200);
    expect(res.headers.warning).toMatch(/authentication is off/);
    const missing = await off.anonymous.get('/dicom-web/studies/1.2.3/metadata');
    expect(missing.status).toBe(404);
    expect(missing.headers.warning).toMatch(/authentication is off/);
  });

  it('still hides labelled studies: the anonymous administrator has no clearances', async () => {
    const inst = syntheticInstance();
    const { body, contentType } = multipartBody([inst.bytes]);
    expect((await off.anonymous.post('/dicom-web/studies').set('Content-Type', contentType).send(body)).status).toBe(200);
    expect((await off.anonymous.put(`/api/studies/${inst.studyUid}/labels`).send({ labels: ['vip'] })).status).toBe(200);
    expect((await off.anonymous.get(`/dicom-web/studies/${inst.studyUid}/metadata`)).status).toBe(404);
  });
});
