import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestArchive, type TestArchive } from '../helpers.js';

// Token attacks and identity providers, over real HTTP requests
// through the whole middleware chain. Each refusal is a 401 (400 for a token
// in the wrong place) with a JSON body and a WWW-Authenticate header.

const SECRET = `secret-${randomUUID()}-${randomUUID()}`;
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaPublicPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const good = { roles: ['clinician'], clearances: [] as string[] };
const opts = { issuer: 'cairn', audience: 'cairn', subject: 'dr-a', expiresIn: 300 } as const;

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive({ auth: { jwtSecret: SECRET, jwtPublicKey: rsaPublicPem } });
});
afterAll(async () => {
  await a?.close();
});

async function withToken(token: string) {
  return a.anonymous.get('/dicom-web/studies').set('Authorization', `Bearer ${token}`);
}

function expectRefused(res: { status: number; body: any; headers: Record<string, string> }, status = 401) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/application\/json/);
  expect(typeof res.body.error).toBe('string');
  expect(typeof res.body.message).toBe('string');
  expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="cairn"/);
}

describe('bearer tokens', () => {
  it('an HS256 token with the secret, issuer, audience and expiry is accepted', async () => {
    expect((await withToken(jwt.sign(good, SECRET, { ...opts, algorithm: 'HS256' }))).status).toBe(200);
  });

  it('an RS256 token signed by the configured key pair is accepted', async () => {
    expect((await withToken(jwt.sign(good, rsa.privateKey, { ...opts, algorithm: 'RS256' }))).status).toBe(200);
  });

  it('no credentials at all is 401 with a bare Bearer challenge', async () => {
    const res = await a.anonymous.get('/dicom-web/studies');
    expectRefused(res);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="cairn"');
  });

  it('alg "none" is refused', async () => {
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...good, sub: 'dr-a', iss: 'cairn', aud: 'cairn', exp: now() + 300 })}.`;
    expectRefused(await withToken(token));
  });

  it('algorithm confusion (HS256 "signed" with the RSA public key as the HMAC secret) is refused', async () => {
    const head = b64({ alg: 'HS256', typ: 'JWT' });
    const body = b64({ ...good, roles: ['admin'], sub: 'mallory', iss: 'cairn', aud: 'cairn', exp: now() + 300 });
    const sig = createHmac('sha256', rsaPublicPem).update(`${head}.${body}`).digest('base64url');
    const res = await withToken(`${head}.${body}.${sig}`);
    expectRefused(res);
    expect(res.headers['www-authenticate']).toContain('error="invalid_token"');
  });

  it('an expired token is refused, saying so', async () => {
    const res = await withToken(jwt.sign({ ...good, exp: now() - 3600 }, SECRET, { algorithm: 'HS256', issuer: 'cairn', audience: 'cairn', subject: 'dr-a' }));
    expectRefused(res);
    expect(res.body.message).toMatch(/expired/);
  });

  it('a token accepted before it expired is refused once it has (a verified token is not trusted past its exp)', async () => {
    // 28 s past exp is within the 30 s clock tolerance: accepted now, refused from exp + 30 on.
    const exp = now() - 28;
    const token = jwt.sign({ ...good, exp }, SECRET, { algorithm: 'HS256', issuer: 'cairn', audience: 'cairn', subject: 'dr-a' });
    expect((await withToken(token)).status).toBe(200);
    expect((await withToken(token)).status).toBe(200);
    await new Promise((r) => setTimeout(r, Math.max(0, (exp + 30) * 1000 - Date.now()) + 50));
    const res = await withToken(token);
    expectRefused(res);
    expect(res.body.message).toMatch(/expired/);
  });

  it('a token that is not valid yet (nbf) is refused', async () => {
    expectRefused(await withToken(jwt.sign({ ...good, nbf: now() + 3600 }, SECRET, { ...opts, algorithm: 'HS256' })));
  });

  it('a token without an expiry is refused', async () => {
    expectRefused(await withToken(jwt.sign(good, SECRET, { algorithm: 'HS256', issuer: 'cairn', audience: 'cairn', subject: 'dr-a' })));
  });

  it('a wrong issuer or audience is refused', async () => {
    expectRefused(await withToken(jwt.sign(good, SECRET, { ...opts, issuer: 'elsewhere', algorithm: 'HS256' })));
    expectRefused(await withToken(jwt.sign(good, SECRET, { ...opts, audience: 'another-app', algorithm: 'HS256' })));
  });

  it('a tampered payload (roles raised, signature kept) is refused', async () => {
    const [h, , s] = jwt.sign(good, SECRET, { ...opts, algorithm: 'HS256' }).split('.');
    const forged = b64({ ...good, roles: ['admin'], sub: 'dr-a', iss: 'cairn', aud: 'cairn', exp: now() + 300 });
    expectRefused(await withToken(`${h}.${forged}.${s}`));
  });

  it('a token signed with another secret is refused', async () => {
    expectRefused(await withToken(jwt.sign(good, 'another-secret-another-secret-123', { ...opts, algorithm: 'HS256' })));
  });

  it('malformed tokens are refused', async () => {
    for (const t of ['abc', 'a.b.c', `${b64({ alg: 'HS256' })}.notjson.sig`]) expectRefused(await withToken(t));
  });

  it('a token in the query string is refused (400, invalid_request), even with a good header', async () => {
    const token = jwt.sign(good, SECRET, { ...opts, algorithm: 'HS256' });
    const res = await a.anonymous.get(`/dicom-web/studies?access_token=${token}`).set('Authorization', `Bearer ${token}`);
    expectRefused(res, 400);
    expect(res.headers['www-authenticate']).toContain('error="invalid_request"');
  });

  it('another Authorization scheme is refused', async () => {
    expectRefused(await a.anonymous.get('/dicom-web/studies').set('Authorization', 'Basic YWxpY2U6c2VjcmV0'), 400);
  });

  it('each refusal is in the audit trail as unauthenticated', async () => {
    const before = Number((await a.deps.db('audit_events').max('id as m').first())?.m ?? 0);
    await withToken('abc');
    const rows = await a.deps.db('audit_events').where('id', '>', before);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ action: 'search', status: 401, outcome: 'unauthenticated', sub: null });
  });

  it('roles not known to Cairn are ignored, and a token with none may do nothing', async () => {
    const res = await withToken(jwt.sign({ roles: ['superuser'] }, SECRET, { ...opts, algorithm: 'HS256' }));
    expect(res.status).toBe(403);
  });
});

describe('an external identity provider', () => {
  let jwks: http.Server;
  let b: TestArchive;
  let fetches = 0;
  beforeAll(async () => {
    const jwk = { ...ec.publicKey.export({ format: 'jwk' }), kid: 'key-1', use: 'sig', alg: 'ES256' };
    jwks = http.createServer((_req, res) => {
      fetches++;
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/certs`;
    // Keycloak's shape: roles nested under realm_access, the user name in preferred_username.
    b = await createTestArchive({
      auth: {
        jwksUrl: url,
        issuer: 'https://idp.example/realms/h',
        audience: 'cairn-web',
        claims: { sub: 'preferred_username', roles: 'realm_access.roles', clearances: 'cairn_clearances' },
      },
    });
  });
  afterAll(async () => {
    await b?.close();
    await new Promise((r) => jwks?.close(r));
  });

  const idp = { issuer: 'https://idp.example/realms/h', audience: 'cairn-web', expiresIn: 300 } as const;

  it('an ES256 token whose kid is in the JWKS is accepted, with claims read by the configured names', async () => {
    const token = jwt.sign({ preferred_username: 'dr-b', realm_access: { roles: ['clinician', 'offline_access'] }, cairn_clearances: 'vip' }, ec.privateKey, {
      ...idp,
      algorithm: 'ES256',
      keyid: 'key-1',
    });
    const res = await b.anonymous.get('/auth/me').set('Authorization', `Bearer ${token}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ sub: 'dr-b', roles: ['clinician'], clearances: ['vip'], via: 'bearer' });
    expect((await b.anonymous.get('/dicom-web/studies').set('Authorization', `Bearer ${token}`)).status).toBe(200);
  });

  it('an unknown kid is refused (and the JWKS is not fetched again at once)', async () => {
    const seen = fetches;
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const token = jwt.sign({ preferred_username: 'x', realm_access: { roles: ['admin'] } }, other.privateKey, { ...idp, algorithm: 'ES256', keyid: 'key-2' });
    expectRefusedB(await b.anonymous.get('/dicom-web/studies').set('Authorization', `Bearer ${token}`));
    expect(fetches - seen).toBeLessThanOrEqual(1);
  });

  it('a provider key is used only with its own algorithm: RS256 naming the EC key is refused before any signature check', async () => {
    const head = b64({ alg: 'RS256', typ: 'JWT', kid: 'key-1' });
    const body = b64({ preferred_username: 'x', realm_access: { roles: ['admin'] }, iss: idp.issuer, aud: idp.audience, exp: now() + 300 });
    const res = await b.anonymous.get('/dicom-web/studies').set('Authorization', `Bearer ${head}.${body}.${Buffer.from('sig').toString('base64url')}`);
    expectRefusedB(res);
    expect((res as unknown as { body: { message: string } }).body.message).toBe('the signing key does not fit RS256');
  });

  function expectRefusedB(res: { status: number; headers: Record<string, string> }) {
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="cairn"/);
  }
});

describe('the generated secret', () => {
  it('is one and the same for processes that start together on one data folder', async () => {
    const { execFile } = await import('node:child_process');
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-secret-'));
    const script =
      "import { loadSecret } from './server/auth/tokens.js'; import { testConfig } from './server/config.js'; process.stdout.write(loadSecret(testConfig().auth, process.argv[1]));";
    const run = () =>
      new Promise<string>((resolve, reject) =>
        execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dir], (err, stdout) => (err ? reject(err) : resolve(stdout))),
      );
    try {
      const secrets = await Promise.all([run(), run(), run(), run()]);
      expect(new Set(secrets).size).toBe(1);
      expect(secrets[0].length).toBeGreaterThanOrEqual(32);
      expect(fs.readdirSync(dir)).toEqual(['auth-secret']);
      expect(fs.statSync(path.join(dir, 'auth-secret')).mode & 0o777).toBe(0o600);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
