import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { AuthFailure, createTokenService, type TokenService } from '../../server/auth/tokens.js';
import { testConfig } from '../../server/config.js';
import { ApiError } from '../../server/errors.js';

// The keys of an identity provider's JWKS endpoint: kept, fetched again when
// a token names a key not seen yet (not more than every 30 s), fetched again
// after 10 minutes whatever happens, and chosen by kid and algorithm.

const ec1 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ec2 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });

const jwk = (key: KeyObject, extra: Record<string, unknown>) => ({ ...key.export({ format: 'jwk' }), use: 'sig', ...extra });

let keys: unknown[] = [];
let answer: ((res: http.ServerResponse) => void) | undefined;
let fetches = 0;
let provider: http.Server;
let url: string;

beforeAll(async () => {
  provider = http.createServer((_req, res) => {
    fetches++;
    if (answer) return answer(res);
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(provider.address() as AddressInfo).port}/certs`;
});
afterAll(async () => {
  await new Promise((resolve) => provider?.close(resolve));
});
afterEach(() => {
  vi.useRealTimers();
  answer = undefined;
});

function service(): TokenService {
  return createTokenService(testConfig({ auth: { ...testConfig().auth, jwksUrl: url } }).auth, 'unused-secret-unused-secret-unused');
}

const sign = (key: KeyObject, alg: 'ES256' | 'RS256', kid?: string, claims: Record<string, unknown> = {}) =>
  jwt.sign({ roles: ['clinician'], ...claims }, key, {
    algorithm: alg,
    issuer: 'cairn',
    audience: 'cairn',
    subject: 'dr-j',
    expiresIn: 3600,
    ...(kid ? { keyid: kid } : {}),
  });

async function refusal(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return err as Error;
}

/** Moves the clock on, as far as jose's cache, jsonwebtoken and the verified-token cache can tell. */
function later(ms: number) {
  vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + ms });
}

describe('the JWKS of an identity provider', () => {
  it('a token is verified with the key its kid names, and the set is fetched once for many tokens', async () => {
    keys = [jwk(ec1.publicKey, { kid: 'k1', alg: 'ES256' }), jwk(ec2.publicKey, { kid: 'k2' })];
    const tokens = service();
    const before = fetches;
    expect((await tokens.verify(sign(ec1.privateKey, 'ES256', 'k1'))).principal.sub).toBe('dr-j');
    expect((await tokens.verify(sign(ec2.privateKey, 'ES256', 'k2'))).principal.sub).toBe('dr-j');
    expect((await tokens.verify(sign(ec2.privateKey, 'ES256', 'k2', { n: 1 }))).principal.sub).toBe('dr-j');
    expect(fetches - before).toBe(1);
  });

  it('a rotated-in key is fetched when a token names it, but not more than every 30 s', async () => {
    keys = [jwk(ec1.publicKey, { kid: 'k1' })];
    const tokens = service();
    const before = fetches;
    await tokens.verify(sign(ec1.privateKey, 'ES256', 'k1'));
    keys = [jwk(ec1.publicKey, { kid: 'k1' }), jwk(ec2.publicKey, { kid: 'k2' })];
    const err = await refusal(tokens.verify(sign(ec2.privateKey, 'ES256', 'k2')));
    expect(err).toBeInstanceOf(AuthFailure);
    expect(err.message).toBe('no signing key "k2" is known');
    expect(fetches - before).toBe(1);
    later(31_000);
    expect((await tokens.verify(sign(ec2.privateKey, 'ES256', 'k2'))).principal.sub).toBe('dr-j');
    expect(fetches - before).toBe(2);
  });

  it('a key dropped from the set stops verifying once the set is 10 minutes old', async () => {
    keys = [jwk(ec1.publicKey, { kid: 'k1' })];
    const tokens = service();
    await tokens.verify(sign(ec1.privateKey, 'ES256', 'k1'));
    keys = [jwk(ec2.publicKey, { kid: 'k2' })];
    later(10 * 60_000 + 1000);
    const err = await refusal(tokens.verify(sign(ec1.privateKey, 'ES256', 'k1', { n: 2 })));
    expect(err.message).toBe('no signing key "k1" is known');
  });

  it('a key is used only with its own algorithm, and a key for encryption not at all', async () => {
    keys = [jwk(ec1.publicKey, { kid: 'k1' }), jwk(rsa.publicKey, { kid: 'enc', use: 'enc' })];
    const tokens = service();
    const forged = `${Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'k1' })).toString('base64url')}.${sign(ec1.privateKey, 'ES256', 'k1').split('.')[1]}.c2ln`;
    expect((await refusal(tokens.verify(forged))).message).toBe('the signing key does not fit RS256');
    expect((await refusal(tokens.verify(sign(rsa.privateKey, 'RS256', 'enc')))).message).toBe('no signing key "enc" is known');
  });

  it('a token without kid is verified with the one key that fits, and refused when several do', async () => {
    keys = [jwk(ec1.publicKey, { kid: 'k1' }), jwk(rsa.publicKey, { kid: 'r1' })];
    expect((await service().verify(sign(ec1.privateKey, 'ES256'))).principal.sub).toBe('dr-j');
    keys = [jwk(ec1.publicKey, { kid: 'k1' }), jwk(ec2.publicKey, { kid: 'k2' })];
    const err = await refusal(service().verify(sign(ec1.privateKey, 'ES256')));
    expect(err).toBeInstanceOf(AuthFailure);
  });

  it('a key that cannot be read spoils only the tokens that name it', async () => {
    keys = [
      { kty: 'EC', crv: 'P-256', kid: 'bad', x: 'AAAA', y: 'AAAA' },
      { kty: 'OKP', crv: 'X448', kid: 'odd', x: 'AAAA' },
      jwk(ec1.publicKey, { kid: 'k1' }),
    ];
    const tokens = service();
    const err = await refusal(tokens.verify(sign(ec2.privateKey, 'ES256', 'bad')));
    expect(err).toBeInstanceOf(AuthFailure);
    expect((await tokens.verify(sign(ec1.privateKey, 'ES256', 'k1'))).principal.sub).toBe('dr-j');
  });

  it('an unreachable or broken provider is a 503, not a refused token', async () => {
    const broken: [string, (res: http.ServerResponse) => void][] = [
      ['HTTP 500', (res) => res.writeHead(500).end('{}')],
      ['not JSON', (res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('<html>')],
      ['not a key set', (res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"keys":"none"}')],
      ['a redirect', (res) => res.writeHead(302, { Location: 'http://127.0.0.1:1/' }).end()],
      ['a dropped connection', (res) => res.socket?.destroy()],
    ];
    for (const [what, how] of broken) {
      answer = how;
      const err = await refusal(service().verify(sign(ec1.privateKey, 'ES256', 'k1')));
      expect(err, what).toBeInstanceOf(ApiError);
      expect((err as ApiError).status, what).toBe(503);
      expect((err as ApiError).code, what).toBe('IdentityProviderUnavailable');
    }
  });
});
