import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestArchive, type TestArchive } from '../helpers.js';

// Every malformed, forged or stale credential, in the Authorization header or
// in the session cookie, is a 401 with RFC 6750's challenge naming
// invalid_token (§3.1), never a 500. The shapes are generated from a fixed
// seed, so a failure names a case that fails again on the next run.

const SEED = 0x5eed_ca1e;
const SECRET = `secret-${randomUUID()}-${randomUUID()}`;
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const CHALLENGE = /^Bearer realm="cairn", error="invalid_token", error_description="[^"]+"$/;

const b64 = (s: string) => Buffer.from(s).toString('base64url');
const json = (o: unknown) => b64(JSON.stringify(o));
const now = () => Math.floor(Date.now() / 1000);
const claims = () => ({ sub: 'dr-a', roles: ['admin'], iss: 'cairn', aud: 'cairn', exp: now() + 300 });
const hs = (signingInput: string, secret = SECRET) => createHmac('sha256', secret).update(signingInput).digest('base64url');
/** A token whose signature is right for whatever header and payload segments it is given. */
const signedRaw = (head: string, body: string) => `${head}.${body}.${hs(`${head}.${body}`)}`;
const good = () => jwt.sign({ roles: ['admin'] }, SECRET, { algorithm: 'HS256', issuer: 'cairn', audience: 'cairn', subject: 'dr-a', expiresIn: 300 });
const goodRs = () =>
  jwt.sign({ roles: ['admin'] }, rsa.privateKey, { algorithm: 'RS256', issuer: 'cairn', audience: 'cairn', subject: 'dr-a', expiresIn: 300 });

/** mulberry32: a small seeded generator, so every run tries the same cases. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const chars = (alphabet: string, n: number) => Array.from({ length: n }, () => alphabet[int(alphabet.length)]).join('');
  return { int, pick, chars };
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
// Characters a bearer token's grammar allows (RFC 6750 §2.1 b64token) but base64url does not.
const NOT_B64URL = '+/=~';
// Characters neither allows; none of them ends a cookie value.
const JUNK = "!#$%&'()*:<>?@[]^`{|}";

/** Named token shapes, each one of the ways a credential can be wrong. */
function shapes(): [string, string][] {
  const r = prng(SEED);
  const out: [string, string][] = [];
  const add = (name: string, token: string) => out.push([name, token]);
  const [h, p, s] = good().split('.');

  // A valid token with characters appended to, or cut from, one segment.
  for (let i = 0; i < 24; i++) {
    const n = 1 + r.int(3);
    add(`payload + ${n} chars #${i}`, `${h}.${p}${r.chars(B64URL, n)}.${s}`);
    add(`header + ${n} chars #${i}`, `${h}${r.chars(B64URL, n)}.${p}.${s}`);
    add(`payload - ${n} chars #${i}`, `${h}.${p.slice(0, -n)}.${s}`);
    add(`header - ${n} chars #${i}`, `${h.slice(0, -n)}.${p}.${s}`);
    add(`signature + ${n} chars #${i}`, `${h}.${p}.${s}${r.chars(B64URL, n)}`);
  }
  // The same appended to a token of each payload length modulo 4, so every
  // padding case of the base64url decoder is met.
  for (let pad = 0; pad < 8; pad++) {
    const [h2, p2, s2] = jwt
      .sign({ roles: ['admin'], n: 'x'.repeat(pad) }, SECRET, { algorithm: 'HS256', issuer: 'cairn', audience: 'cairn', subject: 'dr-a', expiresIn: 300 })
      .split('.');
    add(`payload + 1 char, length ${p2.length}`, `${h2}.${p2}A.${s2}`);
    add(`payload + 1 char (re-signed), length ${p2.length}`, signedRaw(h2, `${p2}A`));
  }
  // Segments missing, extra or empty.
  for (const t of [
    '',
    'a',
    `${h}`,
    `${h}.${p}`,
    `${h}.${p}.${s}.${s}`,
    `${h}.${p}.${s}.`,
    `${h}.${p}.${s}..`,
    '.',
    '..',
    '...',
    `.${p}.${s}`,
    `${h}..${s}`,
    `${h}.${p}.`,
    `..${s}`,
    `${h}.${p}.${s}.${p}.${s}`,
  ]) {
    add(`segments: "${t.slice(0, 12)}…" (${t.split('.').length} parts)`, t);
  }
  // Not base64url, in each segment.
  for (let i = 0; i < 12; i++) {
    const bad = r.chars(NOT_B64URL, 1 + r.int(4));
    const at = r.int(3);
    const parts = [h, p, s];
    parts[at] = parts[at].slice(0, r.int(parts[at].length)) + bad + parts[at].slice(r.int(parts[at].length));
    add(`not base64url in segment ${at} #${i}`, parts.join('.'));
  }
  // Not a token at all (characters outside the bearer grammar).
  for (let i = 0; i < 12; i++) add(`junk characters #${i}`, `${h}.${p}${r.chars(JUNK, 1 + r.int(3))}.${s}`);
  add('a space inside', `${h}.${p} .${s}`);
  // Not JSON, signed with the right secret.
  for (let i = 0; i < 12; i++) {
    const bytes = Buffer.from(Array.from({ length: 1 + r.int(40) }, () => r.int(256))).toString('base64url');
    add(`header not JSON #${i}`, signedRaw(bytes, p));
    add(`payload not JSON #${i}`, signedRaw(h, bytes));
  }
  for (const text of ['{', '{"alg":"HS256"', 'alg', '{"alg":"HS256"}}', '\u0000', '{"a":1}x', "{'alg':'HS256'}"]) {
    add(`header text ${JSON.stringify(text)}`, signedRaw(b64(text), p));
    add(`payload text ${JSON.stringify(text)}`, signedRaw(h, b64(text)));
  }
  // JSON, but not an object.
  for (const v of [null, 0, 1, -1, 1e308, true, false, 'HS256', [], [{ alg: 'HS256' }], ['HS256'], [claims()]]) {
    add(`header ${JSON.stringify(v)?.slice(0, 20)}`, signedRaw(json(v), p));
    add(`payload ${JSON.stringify(v)?.slice(0, 20)}`, signedRaw(h, json(v)));
  }
  // Deeply nested JSON.
  add('header nested 5000 deep', signedRaw(b64('['.repeat(5000) + ']'.repeat(5000)), p));
  add('payload nested 5000 deep', signedRaw(h, b64(`{"a":${'['.repeat(5000)}${']'.repeat(5000)}}`)));
  // Huge header or payload (within the 16 KiB Node lets a request's headers have).
  for (const size of [1000, 4000, 9000]) {
    add(`huge header ${size}, expired`, signedRaw(json({ alg: 'HS256', typ: 'JWT', x: 'a'.repeat(size) }), json({ ...claims(), exp: now() - 3600 })));
    add(`huge unsigned header ${size}`, `${json({ alg: 'HS256', typ: 'JWT', x: r.chars(B64URL, size) })}.${p}.${s}`);
    add(`huge payload ${size}`, signedRaw(h, json({ ...claims(), exp: 'never', x: 'a'.repeat(size) })));
    add(`huge unsigned payload ${size}`, `${h}.${json({ ...claims(), x: r.chars(B64URL, size) })}.${s}`);
  }
  // Bad, missing or odd algorithms.
  for (const alg of [
    'none',
    'None',
    'NONE',
    '',
    'HS384',
    'HS512',
    'RS512',
    'PS256',
    'ES512',
    'EdDSA',
    'hs256',
    'HS256 ',
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
    0,
    256,
    null,
    true,
    ['HS256'],
    { name: 'HS256' },
  ]) {
    add(`alg ${JSON.stringify(alg)}`, signedRaw(json({ alg, typ: 'JWT' }), json(claims())));
    add(`alg ${JSON.stringify(alg)}, empty signature`, `${json({ alg, typ: 'JWT' })}.${json(claims())}.`);
  }
  add('no alg', signedRaw(json({ typ: 'JWT' }), json(claims())));
  // Header values that end up in the refusal's message, which goes into a response header.
  for (const odd of ['HS2\r\n56', 'HS256\u0000', 'RS"256\\', 'Ünïcode', '\u2028', 'x'.repeat(5000)]) {
    add(`alg ${JSON.stringify(odd).slice(0, 20)}`, signedRaw(json({ alg: odd }), json(claims())));
    add(`RS256 kid ${JSON.stringify(odd).slice(0, 20)}`, `${json({ alg: 'RS256', kid: odd })}.${json(claims())}.${s}`);
  }
  for (const kid of [0, null, {}, ['a'], true]) add(`kid ${JSON.stringify(kid).slice(0, 20)}`, signedRaw(json({ alg: 'HS256', kid }), json(claims())));
  for (const kid of [0, null, {}, 'nope', '', '../../etc/passwd'])
    add(`RS256 kid ${JSON.stringify(kid)}`, `${json({ alg: 'RS256', kid })}.${json(claims())}.${s}`);
  // Wrong keys.
  add('HS256 with another secret', jwt.sign(claims(), 'another-secret-another-secret-123', { algorithm: 'HS256' }));
  add('RS256 with another key', jwt.sign(claims(), otherRsa.privateKey, { algorithm: 'RS256' }));
  add('ES256 (no EC key is configured)', jwt.sign(claims(), ec.privateKey, { algorithm: 'ES256' }));
  const confused = `${json({ alg: 'HS256' })}.${json(claims())}`;
  add('HS256 "signed" with the RSA public key', `${confused}.${hs(confused, rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString())}`);
  add(
    'RS256 signature of another token',
    `${goodRs().split('.').slice(0, 2).join('.')}.${jwt.sign({ x: 1 }, rsa.privateKey, { algorithm: 'RS256' }).split('.')[2]}`,
  );
  add('RS256 header on an HS256 signature', `${json({ alg: 'RS256', typ: 'JWT' })}.${p}.${s}`);
  // Expired, not yet valid, odd times.
  add('expired an hour ago', jwt.sign({ ...claims(), exp: now() - 3600 }, SECRET, { algorithm: 'HS256' }));
  add('nbf an hour ahead', jwt.sign({ ...claims(), nbf: now() + 3600 }, SECRET, { algorithm: 'HS256' }));
  for (const exp of ['tomorrow', null, [], {}, true, -1, 0]) add(`exp ${JSON.stringify(exp)}`, signedRaw(json({ alg: 'HS256' }), json({ ...claims(), exp })));
  for (const nbf of ['now', null, [], now() + 3600]) add(`nbf ${JSON.stringify(nbf)}`, signedRaw(json({ alg: 'HS256' }), json({ ...claims(), nbf })));
  add('no exp', signedRaw(json({ alg: 'HS256' }), json({ sub: 'dr-a', roles: ['admin'], iss: 'cairn', aud: 'cairn' })));
  // Claims of the wrong shape, signed.
  for (const sub of [null, 0, '', [], {}]) add(`sub ${JSON.stringify(sub)}`, signedRaw(json({ alg: 'HS256' }), json({ ...claims(), sub })));
  for (const aud of [null, 0, [], ['elsewhere'], {}]) add(`aud ${JSON.stringify(aud)}`, signedRaw(json({ alg: 'HS256' }), json({ ...claims(), aud })));
  for (const iss of [null, 0, [], {}]) add(`iss ${JSON.stringify(iss)}`, signedRaw(json({ alg: 'HS256' }), json({ ...claims(), iss })));
  // Random tokens of three random segments.
  for (let i = 0; i < 24; i++) add(`random #${i}`, [0, 1, 2].map(() => r.chars(B64URL, r.int(60))).join('.'));
  return out;
}

let a: TestArchive;
let server: http.Server;
let client: ReturnType<typeof supertest>;
beforeAll(async () => {
  a = await createTestArchive({ auth: { jwtSecret: SECRET, jwtPublicKey: rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString() } });
  // One server for every request (supertest would otherwise start one per request).
  server = http.createServer(a.app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  client = supertest(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await a?.close();
});

function expectInvalidToken(name: string, res: supertest.Response) {
  const where = `${name}: ${res.status} ${JSON.stringify(res.body)}`;
  expect(res.status, where).toBe(401);
  expect(res.headers['content-type'], where).toMatch(/application\/json/);
  expect(res.body.error, where).toBe('InvalidToken');
  expect(res.headers['www-authenticate'], where).toMatch(CHALLENGE);
}

describe('malformed and forged credentials', () => {
  const cases = shapes();

  it("the good tokens the shapes are made from are accepted (so each refusal is the shape's doing)", async () => {
    expect((await client.get('/dicom-web/studies').set('Authorization', `Bearer ${good()}`)).status).toBe(200);
    expect((await client.get('/dicom-web/studies').set('Authorization', `Bearer ${goodRs()}`)).status).toBe(200);
  });

  it(`are each refused as invalid_token in the Authorization header (${cases.length} shapes)`, async () => {
    for (const [name, token] of cases) expectInvalidToken(name, await client.get('/dicom-web/studies').set('Authorization', `Bearer ${token}`));
  });

  it('are each refused as invalid_token in the session cookie', async () => {
    // An empty cookie is no session at all (logout leaves one behind), not a bad one.
    for (const [name, token] of cases.filter(([, t]) => t !== '')) {
      expectInvalidToken(name, await client.get('/dicom-web/studies').set('Cookie', `cairn_session=${token}`));
    }
  });

  it('a Bearer header with no token, or with several, is refused as invalid_token', async () => {
    for (const value of ['Bearer', 'Bearer ', 'bearer  ', `Bearer ${good()} ${good()}`, `Bearer ${good()},x`]) {
      expectInvalidToken(JSON.stringify(value), await client.get('/dicom-web/studies').set('Authorization', value));
    }
  });

  it('/auth/me names the token problem too', async () => {
    const [h, p, s] = good().split('.');
    expectInvalidToken('payload + 1', await client.get('/auth/me').set('Authorization', `Bearer ${h}.${p}x.${s}`));
  });
});
