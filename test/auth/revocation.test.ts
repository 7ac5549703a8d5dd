import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import jwt from 'jsonwebtoken';
import supertest from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApp } from '../../server/app.js';
import { hashPassword } from '../../server/auth/passwords.js';
import { connect, type Db } from '../../server/db/knex.js';
import { saveUser } from '../../server/db/users.js';
import { createTestArchive, type TestArchive } from '../helpers.js';

// Sessions and bearer tokens that end before they expire: logout, an account
// change and an administrator's revocation are refused at once by the app
// that made them, and by another app on the same database (a replica)
// within AUTH_REVOCATION_CHECK_SECONDS; each is audited.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SECRET = 'revocation-test-secret-0123456789abcdef';
const PASSWORD = 'correct horse battery staple';

let a: TestArchive;
/** A second app on the same database: another replica, with its own memory. */
let replica: ReturnType<typeof createApp>;
let replicaDb: Db;
let interval: number;

beforeAll(async () => {
  a = await createTestArchive({ auth: { jwtSecret: SECRET } });
  replicaDb = connect(a.dbUrl, 2);
  replica = createApp({ ...a.deps, db: replicaDb });
  interval = a.deps.config.auth.revocationCheckSeconds * 1000;
  await saveUser(a.deps.db, { username: 'alice', password_hash: await hashPassword(PASSWORD, 4), roles: ['clinician'], clearances: [] });
});
afterAll(async () => {
  await replicaDb?.destroy();
  await a?.close();
});
afterEach(() => {
  vi.useRealTimers();
});

/** Stops the clock: what an app remembers stays fresh until the test moves the clock past the interval. */
function freezeClock(): void {
  vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
}
function passInterval(): void {
  vi.setSystemTime(Date.now() + interval + 1);
}

async function login(username = 'alice') {
  const res = await a.anonymous.post('/auth/login').send({ username, password: PASSWORD });
  expect(res.status).toBe(200);
  const cookie = ((res.headers['set-cookie'] as unknown as string[]) ?? []).find((c) => c.startsWith('cairn_session='))!.split(';')[0];
  return { cookie, csrf: res.body.csrfToken as string, jwt: cookie.slice('cairn_session='.length) };
}

const onA = (cookie: string) => supertest(a.app.callback()).get('/dicom-web/studies').set('Cookie', cookie);
const onReplica = (cookie: string) => supertest(replica.callback()).get('/dicom-web/studies').set('Cookie', cookie);

function run(script: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', script, ...args],
      { cwd: root, env: { ...process.env, LOG_LEVEL: 'warn', DATABASE_URL: a.dbUrl, AUTH_JWT_SECRET: SECRET, DATA_DIR: a.deps.config.dataDir } },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('sessions', () => {
  it('a login makes a session row, and the cookie names it', async () => {
    const { jwt: token } = await login();
    const sid = (jwt.decode(token) as { sid: string }).sid;
    const row = await a.deps.db('sessions').where({ id: sid }).first();
    expect(row).toMatchObject({ username: 'alice', revoked_at: null });
    expect(row.expires_at.getTime()).toBeGreaterThan(Date.now() + 3600_000);
  });

  it('after logout a copy of the cookie is refused at once by the same app, and by a replica within the interval', async () => {
    const { cookie } = await login();
    freezeClock();
    expect((await onA(cookie)).status).toBe(200);
    expect((await onReplica(cookie)).status).toBe(200);
    const out = await supertest(a.app.callback()).post('/auth/logout').set('Cookie', cookie).set('Content-Type', 'application/json');
    expect(out.status).toBe(204);
    const refused = await onA(cookie);
    expect(refused.status).toBe(401);
    expect(refused.body.error).toBe('InvalidToken');
    expect(refused.headers['www-authenticate']).toMatch(/error="invalid_token"/);
    // The replica read the session within the interval and may go on trusting it until the interval has passed.
    expect((await onReplica(cookie)).status).toBe(200);
    passInterval();
    expect((await onReplica(cookie)).status).toBe(401);
  });

  it('logout ends the session row and is audited as logout, saying the session ended', async () => {
    const { cookie, jwt: token } = await login();
    await supertest(a.app.callback()).post('/auth/logout').set('Cookie', cookie);
    const sid = (jwt.decode(token) as { sid: string }).sid;
    expect(await a.deps.db('sessions').where({ id: sid }).first()).toMatchObject({ revoked_reason: 'logged out' });
    expect((await a.deps.db('sessions').where({ id: sid }).first()).revoked_at).toBeInstanceOf(Date);
    const row = await a.deps.db('audit_events').where({ action: 'logout' }).orderBy('id', 'desc').first();
    expect(row).toMatchObject({ sub: 'alice', outcome: 'success' });
    expect(row.detail).toMatchObject({ sessionEnded: true, via: 'cookie' });
  });

  it("a session's JWT sent as a bearer token is refused once the session has ended", async () => {
    const { cookie, jwt: token } = await login();
    const bearer = () => a.anonymous.get('/dicom-web/studies').set('Authorization', `Bearer ${token}`);
    expect((await bearer()).status).toBe(200);
    await supertest(a.app.callback()).post('/auth/logout').set('Cookie', cookie);
    expect((await bearer()).status).toBe(401);
  });

  it('a session cookie that names no session is refused', async () => {
    const token = a.deps.tokens.sign({ sub: 'alice', roles: ['clinician'], clearances: [] }, 3600, { csrf: 'x' });
    const res = await onA(`cairn_session=${token}`);
    expect(res.status).toBe(401);
    expect(res.body.message).toMatch(/names no session/);
  });

  it('an expired session row is refused even though its JWT is still valid', async () => {
    const { cookie, jwt: token } = await login();
    const sid = (jwt.decode(token) as { sid: string }).sid;
    await a.deps
      .db('sessions')
      .where({ id: sid })
      .update({ expires_at: a.deps.db.raw("now() - interval '1 second'") });
    expect((await onA(cookie)).status).toBe(401);
  });

  it('a session is read from the database once per interval, not at every request', async () => {
    const { cookie } = await login();
    const counting = connect(a.dbUrl, 2);
    let acquired = 0;
    const acquire = counting.client.acquireConnection.bind(counting.client);
    counting.client.acquireConnection = () => {
      acquired++;
      return acquire();
    };
    try {
      const app = createApp({ ...a.deps, db: counting });
      freezeClock();
      for (let i = 0; i < 10; i++) expect((await supertest(app.callback()).get('/auth/me').set('Cookie', cookie)).status).toBe(200);
      expect(acquired).toBe(1);
      passInterval();
      expect((await supertest(app.callback()).get('/auth/me').set('Cookie', cookie)).status).toBe(200);
      expect(acquired).toBe(2);
    } finally {
      await counting.destroy();
    }
  });

  it('npm run user -- set changing the roles ends the sessions of the account, audited with their number', async () => {
    await saveUser(a.deps.db, { username: 'bob', password_hash: await hashPassword(PASSWORD, 4), roles: ['clinician'], clearances: [] });
    const first = await login('bob');
    await login('bob');
    expect((await onA(first.cookie)).status).toBe(200);
    const r = await run('server/cli/user.ts', ['set', 'bob', '--roles', 'researcher']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/2 open sessions ended/);
    freezeClock();
    passInterval();
    expect((await onA(first.cookie)).status).toBe(401);
    vi.useRealTimers();
    const row = await a.deps.db('audit_events').where({ action: 'session-revoke', protocol: 'cli' }).orderBy('id', 'desc').first();
    expect(row.detail).toMatchObject({ user: 'bob', sessions: 2, reason: 'roles or clearances changed', command: 'user set' });
    // A new login has the new roles.
    expect((await a.anonymous.post('/auth/login').send({ username: 'bob', password: PASSWORD })).body.roles).toEqual(['researcher']);
  });

  it('npm run user -- remove ends the sessions of the account, audited', async () => {
    await saveUser(a.deps.db, { username: 'carol', password_hash: await hashPassword(PASSWORD, 4), roles: ['clinician'], clearances: [] });
    const { jwt: token } = await login('carol');
    const r = await run('server/cli/user.ts', ['remove', 'carol']);
    expect(r.code, r.stderr).toBe(0);
    const sid = (jwt.decode(token) as { sid: string }).sid;
    expect(await a.deps.db('sessions').where({ id: sid }).first()).toMatchObject({ revoked_reason: 'account removed' });
    const row = await a.deps.db('audit_events').where({ action: 'session-revoke', protocol: 'cli' }).orderBy('id', 'desc').first();
    expect(row.detail).toMatchObject({ user: 'carol', sessions: 1, reason: 'account removed', command: 'user remove' });
  });

  it('a password change alone leaves the sessions open', async () => {
    await saveUser(a.deps.db, { username: 'dan', password_hash: await hashPassword(PASSWORD, 4), roles: ['clinician'], clearances: [] });
    const { jwt: token } = await login('dan');
    await a.deps.db('users').where({ username: 'dan' }).update({ password_hash: 'changed' });
    const sid = (jwt.decode(token) as { sid: string }).sid;
    expect(await a.deps.db('sessions').where({ id: sid }).first()).toMatchObject({ revoked_at: null });
  });
});

describe('revoking bearer tokens', () => {
  const clinician = { sub: 'pacs-9', roles: ['clinician'] as const };
  const jtiOf = (token: string) => (jwt.decode(token) as { jti: string }).jti;

  it('tokens this archive signs carry a jti', () => {
    expect(jtiOf(a.token(clinician))).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('an admin revokes a token by its jti: refused at once here, by a replica within the interval; audited', async () => {
    const token = a.token(clinician);
    const bearer = (app: ReturnType<typeof createApp>) => supertest(app.callback()).get('/dicom-web/studies').set('Authorization', `Bearer ${token}`);
    freezeClock();
    expect((await bearer(a.app)).status).toBe(200);
    expect((await bearer(replica)).status).toBe(200);
    const res = await a.request.post('/api/revoked-tokens').send({ jti: jtiOf(token), reason: 'laptop stolen' });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ jti: jtiOf(token), revoked: true, alreadyRevoked: false });
    const refused = await bearer(a.app);
    expect(refused.status).toBe(401);
    expect(refused.body.message).toMatch(/revoked/);
    expect(refused.headers['www-authenticate']).toMatch(/error="invalid_token"/);
    expect((await bearer(replica)).status).toBe(200);
    passInterval();
    expect((await bearer(replica)).status).toBe(401);
    vi.useRealTimers();
    const row = await a.deps.db('audit_events').where({ action: 'token-revoke' }).orderBy('id', 'desc').first();
    expect(row).toMatchObject({ sub: 'test-admin', outcome: 'success', status: 201, protocol: 'http' });
    expect(row.detail).toMatchObject({ jti: jtiOf(token), reason: 'laptop stolen', alreadyRevoked: false });
    expect(
      await a.deps
        .db('revoked_tokens')
        .where({ jti: jtiOf(token) })
        .first(),
    ).toMatchObject({ revoked_by: 'test-admin', reason: 'laptop stolen' });
  });

  it('revoking it again answers 200, saying it already was', async () => {
    const jti = jtiOf(a.token(clinician));
    expect((await a.request.post('/api/revoked-tokens').send({ jti })).status).toBe(201);
    const again = await a.request.post('/api/revoked-tokens').send({ jti });
    expect(again.status).toBe(200);
    expect(again.body.alreadyRevoked).toBe(true);
  });

  it('other tokens of the same subject stay good', async () => {
    const revoked = a.token(clinician);
    const other = a.token(clinician);
    await a.request.post('/api/revoked-tokens').send({ jti: jtiOf(revoked) });
    expect((await a.anonymous.get('/dicom-web/studies').set('Authorization', `Bearer ${other}`)).status).toBe(200);
  });

  it('only an admin may revoke, and only with credentials', async () => {
    const jti = jtiOf(a.token(clinician));
    expect(
      (
        await a
          .as({ roles: ['clinician'] })
          .post('/api/revoked-tokens')
          .send({ jti })
      ).status,
    ).toBe(403);
    expect(
      (
        await a
          .as({ roles: ['auditor'] })
          .post('/api/revoked-tokens')
          .send({ jti })
      ).status,
    ).toBe(403);
    expect((await a.anonymous.post('/api/revoked-tokens').send({ jti })).status).toBe(401);
    expect(await a.deps.db('revoked_tokens').where({ jti }).first()).toBeUndefined();
  });

  it('a request without a usable jti is a 400 saying what is wrong', async () => {
    for (const body of [{}, { jti: '' }, { jti: 42 }, { jti: 'x'.repeat(300) }, { jti: 'a\u0000b' }]) {
      const res = await a.request.post('/api/revoked-tokens').send(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error).toBe('InvalidTokenId');
      expect(res.body.message).toMatch(/jti/);
    }
    const reason = await a.request.post('/api/revoked-tokens').send({ jti: 'abc', reason: 7 });
    expect(reason.status).toBe(400);
    expect(reason.body.error).toBe('InvalidReason');
  });

  it('a token is checked against the revoked list without a query per request', async () => {
    const token = a.token(clinician);
    const counting = connect(a.dbUrl, 2);
    let acquired = 0;
    const acquire = counting.client.acquireConnection.bind(counting.client);
    counting.client.acquireConnection = () => {
      acquired++;
      return acquire();
    };
    try {
      const app = createApp({ ...a.deps, db: counting });
      freezeClock();
      for (let i = 0; i < 10; i++) expect((await supertest(app.callback()).get('/auth/me').set('Authorization', `Bearer ${token}`)).status).toBe(200);
      // The revoked list, read once for the interval, whatever the number of requests and tokens.
      expect(acquired).toBe(1);
      expect(
        (
          await supertest(app.callback())
            .get('/auth/me')
            .set('Authorization', `Bearer ${a.token(clinician)}`)
        ).status,
      ).toBe(200);
      expect(acquired).toBe(1);
    } finally {
      await counting.destroy();
    }
  });

  it('npm run token prints the jti on stderr, and npm run token -- revoke revokes it, audited', async () => {
    const made = await run('server/cli/token.ts', ['--sub', 'gw-1', '--roles', 'clinician']);
    expect(made.code, made.stderr).toBe(0);
    const token = made.stdout.trim();
    const jti = jtiOf(token);
    expect(made.stderr).toContain(jti);
    const bearer = () => supertest(replica.callback()).get('/dicom-web/studies').set('Authorization', `Bearer ${token}`);
    expect((await bearer()).status).toBe(200);
    const r = await run('server/cli/token.ts', ['revoke', jti, '--reason', 'gateway retired']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/revoked/);
    freezeClock();
    passInterval();
    expect((await bearer()).status).toBe(401);
    vi.useRealTimers();
    const row = await a.deps.db('audit_events').where({ action: 'token-revoke', protocol: 'cli' }).orderBy('id', 'desc').first();
    expect(row.detail).toMatchObject({ jti, reason: 'gateway retired', command: 'token revoke', alreadyRevoked: false });
  });

  it('a clock that went back makes the remembered list stale, not longer-lived', async () => {
    const token = a.token(clinician);
    const jti = jtiOf(token);
    const bearer = () => supertest(replica.callback()).get('/dicom-web/studies').set('Authorization', `Bearer ${token}`);
    // The replica reads the list at a time ahead of the real one, then the clock steps back.
    freezeClock();
    passInterval();
    expect((await bearer()).status).toBe(200);
    vi.useRealTimers();
    await a.deps.db('revoked_tokens').insert({ jti, revoked_by: 'test', reason: 'clock step' });
    expect((await bearer()).status).toBe(401);
  });

  it('npm run token -- revoke without a jti is a usage error', async () => {
    const r = await run('server/cli/token.ts', ['revoke']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/jti/);
  });
});
