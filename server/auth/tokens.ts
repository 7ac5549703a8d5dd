import { secretInDataDir } from '../secret-file.js';
import { createPublicKey, createSecretKey, KeyObject, randomUUID } from 'node:crypto';
import { createRemoteJWKSet, customFetch, errors as jose } from 'jose';
import jwt from 'jsonwebtoken';
import { LABEL_PATTERN, toRoles, type DeidChoice, type Principal } from '../access.js';
import { parseProfile, PROJECT_PATTERN } from '../deid/settings.js';
import type { AuthConfig } from '../config.js';
import { ApiError } from '../errors.js';

// Bearer JWTs. Which key verifies a token follows from its `alg`,
// and each key is used with its own algorithm only: HS256 with the shared
// secret, RS256 / ES256 with the configured public key or a JWKS key. So an
// HS256 token "signed" with the public key (algorithm confusion) meets the
// secret and fails, and `alg: none` is never accepted.

/** Why a credential was refused, as RFC 6750 §3.1 names it. */
export class AuthFailure extends Error {
  constructor(
    readonly error: 'invalid_token' | 'invalid_request',
    message: string,
  ) {
    // The message goes into a header's error_description, which RFC 6750 §3
    // allows printable ASCII only, without '\' (and '"', which becomes "'"
    // there); parts of a message can come from the token (its alg or kid).
    super(message.replace(/[^\x20-\x5b\x5d-\x7e]/g, '?'));
  }

  /** The answer: 400 for a malformed request, 401 for a bad token, each with its RFC 6750 §3 challenge. */
  toApiError(): ApiError {
    const status = this.error === 'invalid_request' ? 400 : 401;
    return new ApiError(status, status === 400 ? 'InvalidRequest' : 'InvalidToken', this.message, {
      'WWW-Authenticate': `Bearer realm="cairn", error="${this.error}", error_description="${this.message.replace(/"/g, "'")}"`,
    });
  }
}

export interface VerifiedToken {
  principal: Principal;
  /** The CSRF token a session cookie's JWT carries (absent in bearer tokens Cairn issues to tools). */
  csrf?: string;
  /** The session a login page's JWT belongs to: checked against the sessions table whichever way the JWT comes. */
  sid?: string;
  /** The token's id (RFC 7519 §4.1.7), by which an administrator revokes it. */
  jti?: string;
}

export interface TokenService {
  verify(token: string): Promise<VerifiedToken>;
  /**
   * An HS256 token for this archive: sessions of the login page (with their
   * sid and CSRF token) and `npm run token` (with a jti, a new one unless given).
   */
  sign(principal: Principal, ttlSeconds: number, extra?: { csrf?: string; sid?: string; jti?: string }): string;
}

const ASYMMETRIC = new Map<string, 'rsa' | 'ec'>([
  ['RS256', 'rsa'],
  ['ES256', 'ec'],
]);
const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX = 10_000;
// RFC 7515 §7.1: three base64url segments (no padding); the signature may be
// empty only for alg "none", which is refused anyway.
const COMPACT_JWS = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)$/;

export function createTokenService(auth: AuthConfig, secretText: string): TokenService {
  // A KeyObject made once: given the secret as a string, jsonwebtoken turns
  // it into a key on every call, which cost 0.35 ms a request (9 µs this way).
  const secret = createSecretKey(Buffer.from(secretText, 'utf8'));
  const publicKey = auth.jwtPublicKey ? createPublicKey(auth.jwtPublicKey) : undefined;
  const jwks = auth.jwksUrl ? providerKeys(auth.jwksUrl) : undefined;

  async function keyFor(alg: string, kid: string | undefined): Promise<KeyObject> {
    if (alg === 'HS256') return secret;
    const kind = ASYMMETRIC.get(alg);
    if (!kind || (!publicKey && !jwks)) throw new AuthFailure('invalid_token', `tokens signed with ${alg.slice(0, 20)} are not accepted`);
    const key = jwks && (kid !== undefined || !publicKey) ? await jwks(alg, kid) : publicKey!;
    if (key.asymmetricKeyType !== kind) throw new AuthFailure('invalid_token', `the signing key does not fit ${alg}`);
    return key;
  }

  // Verified tokens, kept a short while: clients send the same token with
  // every request, and decoding and checking it again cost about 80 µs each
  // time. Keyed by the whole token text (signature included); an entry lasts
  // until the token's own expiry (with the same 30 s tolerance) or
  // VERIFIED_TTL_MS, whichever is first, so tokens of a key dropped from the
  // JWKS stop within that time. Failures are never kept.
  const verified = new Map<string, { result: VerifiedToken; until: number }>();

  async function check(token: string): Promise<{ result: VerifiedToken; exp: number }> {
    const { alg, kid } = readHeader(token);
    const key = await keyFor(alg, kid);
    let payload: jwt.JwtPayload;
    try {
      payload = jwt.verify(token, key, {
        algorithms: [alg as jwt.Algorithm],
        issuer: auth.issuer,
        audience: auth.audience,
        clockTolerance: 30,
      }) as jwt.JwtPayload;
    } catch (err) {
      throw new AuthFailure('invalid_token', describe(err));
    }
    if (typeof payload.exp !== 'number') throw new AuthFailure('invalid_token', 'the token has no expiry (exp)');
    const sub = claim(payload, auth.claims.sub);
    if (typeof sub !== 'string' || sub === '') throw new AuthFailure('invalid_token', `the token has no "${auth.claims.sub}" claim`);
    const deid = deidClaim(payload.deid);
    const principal: Principal = Object.freeze({
      sub,
      roles: Object.freeze(toRoles(list(claim(payload, auth.claims.roles)))),
      clearances: Object.freeze(list(claim(payload, auth.claims.clearances)).filter((c) => LABEL_PATTERN.test(c))),
      ...(deid ? { deid } : {}),
    });
    const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
    // Only Cairn's own sessions (signed with its HS256 secret) are looked up by
    // sid: an identity provider's tokens may carry an OIDC `sid` of their own.
    const sid = alg === 'HS256' ? text(payload.sid) : undefined;
    return { result: { principal, csrf: text(payload.csrf), sid, jti: text(payload.jti) }, exp: payload.exp };
  }

  return {
    async verify(token) {
      const now = Date.now();
      const hit = verified.get(token);
      if (hit && hit.until > now) return hit.result;
      if (hit) verified.delete(token);
      const { result, exp } = await check(token);
      if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value!);
      verified.set(token, { result, until: Math.min(now + VERIFIED_TTL_MS, (exp + 30) * 1000) });
      return result;
    },
    sign(principal, ttlSeconds, extra = {}) {
      const payload: Record<string, unknown> = { ...(extra.csrf ? { csrf: extra.csrf } : {}), ...(extra.sid ? { sid: extra.sid } : {}) };
      setClaim(payload, auth.claims.roles, [...principal.roles]);
      setClaim(payload, auth.claims.clearances, [...principal.clearances]);
      if (auth.claims.sub !== 'sub') setClaim(payload, auth.claims.sub, principal.sub);
      if (principal.deid) payload.deid = { ...principal.deid };
      return jwt.sign(payload, secret, {
        algorithm: 'HS256',
        expiresIn: ttlSeconds,
        issuer: auth.issuer,
        audience: auth.audience,
        subject: principal.sub,
        ...(extra.sid ? {} : { jwtid: extra.jti ?? randomUUID() }),
      });
    },
  };
}

/**
 * The header of a compact JWS, after checking the token's whole shape: three
 * base64url segments whose first two are JSON objects. Whatever a client
 * sends, the answer is a value or an AuthFailure, never an exception of the
 * decoder (jsonwebtoken's decode throws on a payload that is not JSON).
 */
function readHeader(token: string): { alg: string; kid: string | undefined } {
  const m = COMPACT_JWS.exec(token);
  // A base64url text never has a length of 4n + 1 (RFC 4648 §5): its last character would carry no whole byte.
  if (!m || m[1].length % 4 === 1 || m[2].length % 4 === 1 || m[3].length % 4 === 1)
    throw new AuthFailure('invalid_token', 'the token is not a JWT (three base64url segments)');
  const header = jsonObject(m[1]);
  if (!header) throw new AuthFailure('invalid_token', 'the token header is not a JSON object');
  if (!jsonObject(m[2])) throw new AuthFailure('invalid_token', 'the token payload is not a JSON object');
  const { alg, kid } = header;
  if (typeof alg !== 'string' || alg === '') throw new AuthFailure('invalid_token', 'the token header names no algorithm (alg)');
  if (kid !== undefined && typeof kid !== 'string') throw new AuthFailure('invalid_token', "the token header's kid is not a string");
  return { alg, kid };
}

function jsonObject(segment: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function describe(err: unknown): string {
  if (err instanceof jwt.TokenExpiredError) return 'the token has expired';
  if (err instanceof jwt.NotBeforeError) return 'the token is not valid yet (nbf)';
  const m = (err as Error).message ?? '';
  if (/issuer/.test(m)) return 'the token has the wrong issuer';
  if (/audience/.test(m)) return 'the token has the wrong audience';
  if (/signature/.test(m)) return 'the token signature is invalid';
  return 'the token is invalid';
}

/**
 * The `deid` claim: the de-identified view the token's bearer reads through,
 * as {"profile": "option,option", "project": "name"} (either may be left out).
 * A claim that cannot be honoured refuses the token: reading identified
 * data instead would be the wrong way to fail.
 */
function deidClaim(v: unknown): DeidChoice | undefined {
  if (v === undefined) return undefined;
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new AuthFailure('invalid_token', 'the deid claim must be an object {"profile", "project"}');
  const { profile, project } = v as Record<string, unknown>;
  if (profile === undefined && project === undefined) throw new AuthFailure('invalid_token', 'the deid claim names neither a profile nor a project');
  if (profile !== undefined && (typeof profile !== 'string' || 'problem' in parseProfile(profile)))
    throw new AuthFailure('invalid_token', 'the deid claim names a profile Cairn does not know');
  if (project !== undefined && (typeof project !== 'string' || !PROJECT_PATTERN.test(project)))
    throw new AuthFailure('invalid_token', 'the deid claim names a project that is not 1-64 letters, digits, "_", "." or "-"');
  return Object.freeze({ ...(profile !== undefined ? { profile } : {}), ...(project !== undefined ? { project } : {}) }) as DeidChoice;
}

/** A claim by name, or by a dotted path into nested claims (Keycloak's `realm_access.roles`). */
function claim(payload: Record<string, unknown>, name: string): unknown {
  if (name in payload) return payload[name];
  return name.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), payload);
}

function setClaim(payload: Record<string, unknown>, name: string, value: unknown): void {
  const keys = name.split('.');
  let o = payload;
  for (const k of keys.slice(0, -1)) o = (o[k] ??= {}) as Record<string, unknown>;
  o[keys[keys.length - 1]] = value;
}

/** Roles and clearances as an array of strings, or one string separated by spaces or commas. */
function list(v: unknown): string[] {
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  if (typeof v === 'string') return v.split(/[\s,]+/).filter(Boolean);
  return [];
}

/** The JWKS document could not be had: the identity provider's fault, not the token's. */
class ProviderUnavailable extends Error {}

/**
 * The signing keys of an identity provider's JWKS endpoint, through jose's
 * remote key set: fetched on first use and kept 10 minutes, fetched again
 * for a kid it does not know (at most every 30 s), each fetch given 5 s;
 * a key is chosen by kid and must fit the token's alg (kty, crv, use, alg),
 * so an EC key is never tried as an RS256 key. An unreachable or broken
 * provider is a 503; a token naming no usable key is a 401.
 */
function providerKeys(url: string): (alg: string, kid: string | undefined) => Promise<KeyObject> {
  const remote = createRemoteJWKSet(new URL(url), {
    cacheMaxAge: 10 * 60_000,
    cooldownDuration: 30_000,
    timeoutDuration: 5000,
    // Every failure of the document itself is marked as the provider's, so
    // it is told apart from a key that fits no token.
    [customFetch]: async (input: string | URL, init: RequestInit) => {
      try {
        const res = await fetch(input, init);
        if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
        const body = (await res.json()) as { keys?: unknown };
        if (!Array.isArray(body?.keys) || !body.keys.every((k) => k !== null && typeof k === 'object' && !Array.isArray(k)))
          throw new Error('the answer is not a JSON Web Key Set');
        return Response.json(body);
      } catch (err) {
        const reason = (err as Error).name === 'TimeoutError' ? 'no answer within 5 s' : (err as Error).message;
        throw new ProviderUnavailable(reason);
      }
    },
  });
  // jose gives Web Crypto keys, verified here by jsonwebtoken as Node KeyObjects.
  const converted = new WeakMap<CryptoKey, KeyObject>();
  return async (alg, kid) => {
    let key: CryptoKey;
    try {
      key = (await remote({ alg, kid })) as CryptoKey;
    } catch (err) {
      if (err instanceof ProviderUnavailable || err instanceof jose.JWKSTimeout) {
        throw new ApiError(503, 'IdentityProviderUnavailable', `the signing keys at AUTH_JWKS_URL could not be fetched (${err.message})`);
      }
      if (err instanceof jose.JWKSNoMatchingKey) {
        const named = kid !== undefined && (remote.jwks()?.keys ?? []).some((k) => k.kid === kid && (k.use === undefined || k.use === 'sig'));
        throw new AuthFailure(
          'invalid_token',
          named ? `the signing key does not fit ${alg}` : `no signing key ${kid === undefined ? '' : `"${kid.slice(0, 100)}" `}is known`,
        );
      }
      if (err instanceof jose.JWKSMultipleMatchingKeys) throw new AuthFailure('invalid_token', 'the token names no signing key (kid) and several fit');
      // A key of a kind that cannot be read (or a private key) serves no token.
      throw new AuthFailure('invalid_token', `the signing key ${kid === undefined ? '' : `"${kid.slice(0, 100)}" `}cannot be used`);
    }
    let keyObject = converted.get(key);
    if (!keyObject) converted.set(key, (keyObject = KeyObject.from(key)));
    return keyObject;
  };
}

/**
 * The HS256 secret: AUTH_JWT_SECRET, or one generated on first start and kept
 * in DATA_DIR/auth-secret (mode 0600), so sessions survive restarts. Replicas
 * must share AUTH_JWT_SECRET instead.
 */
export function loadSecret(auth: AuthConfig, dataDir: string): string {
  if (auth.jwtSecret) return auth.jwtSecret;
  return secretInDataDir(dataDir, 'auth-secret');
}
