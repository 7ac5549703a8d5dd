import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../db/knex.js';
import { findCollection, findShare, isGranted, type Collection, type Share } from './rows.js';

// What each request through a collection's DICOMweb root asks of the
// database (the collection, whether a principal is granted it, a share
// token's row), remembered for at most AUTH_REVOCATION_CHECK_SECONDS. One
// directory per app: a change made through this app (a share revoked, a
// collection changed or removed, a grant withdrawn) is forgotten here at
// once, so the next request through this app reads it; every other replica
// reads it when its own memory runs out, within those seconds.

/** A share token: `cairnshare_` + the share's id (32 hex digits) + `_` + 32 random bytes in hex. */
const SHARE_TOKEN = /^cairnshare_([0-9a-f]{32})_([0-9a-f]{64})$/;

export function isShareToken(token: string): boolean {
  return token.startsWith('cairnshare_');
}

/** A new share token's secret part and the SHA-256 that is stored; the token itself is shown once and never kept. */
export function newShareSecret(): { secret: string; sha256: Buffer } {
  const secret = randomBytes(32).toString('hex');
  return { secret, sha256: sha256(secret) };
}

export function shareToken(shareId: string, secret: string): string {
  return `cairnshare_${shareId.replace(/-/g, '')}_${secret}`;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * Why a share token is refused, or the share it opens. A token whose secret
 * is right but whose share has ended says which share, and how it ended:
 * its holder is told when and whom to ask (share-link.ts).
 */
export type ShareCheck = { ok: true; share: Share } | { ok: false; reason: string; ended?: { how: 'expired' | 'revoked'; share: Share } };

const MAX_REMEMBERED = 10_000;

export class CollectionDirectory {
  private readonly collections = new Map<string, Remembered<Collection | undefined>>();
  private readonly grants = new Map<string, Remembered<boolean>>();
  private readonly shares = new Map<string, Remembered<(Share & { tokenSha256: Buffer }) | undefined>>();
  private readonly ttl: number;

  constructor(
    private readonly db: Db,
    seconds: number,
  ) {
    this.ttl = seconds * 1000;
  }

  async collection(id: string): Promise<Collection | undefined> {
    return this.remembered(this.collections, id, () => findCollection(this.db, id));
  }

  async granted(id: string, sub: string, roles: readonly string[]): Promise<boolean> {
    return this.remembered(this.grants, `${id}|${sub}|${[...roles].sort().join(',')}`, () => isGranted(this.db, id, sub, roles));
  }

  /** The share a token opens, checked against its row: the secret, the expiry (now, not when remembered), revocation. */
  async share(token: string): Promise<ShareCheck> {
    const m = SHARE_TOKEN.exec(token);
    if (!m) return { ok: false, reason: 'the share token is malformed' };
    const id = m[1].replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
    const row = await this.remembered(this.shares, id, () => findShare(this.db, id));
    if (!row || !timingSafeEqual(row.tokenSha256, sha256(m[2]))) return { ok: false, reason: 'the share token is not known' };
    const { tokenSha256: _, ...share } = row;
    if (row.revokedAt) return { ok: false, reason: 'the share has been revoked', ended: { how: 'revoked', share } };
    if (row.expiresAt.getTime() <= Date.now()) return { ok: false, reason: 'the share has expired', ended: { how: 'expired', share } };
    return { ok: true, share };
  }

  /** This app forgets what it remembered of a collection (changed, removed, a grant withdrawn) and of its shares. */
  forget(id: string): void {
    this.collections.delete(id);
    for (const key of [...this.grants.keys()]) if (key.startsWith(`${id}|`)) this.grants.delete(key);
    for (const [shareId, s] of [...this.shares]) if (!s.value || s.value.collectionId === id) this.shares.delete(shareId);
  }

  /** This app forgets one share (revoked here). */
  forgetShare(shareId: string): void {
    this.shares.delete(shareId);
  }

  private async remembered<T>(map: Map<string, Remembered<T>>, key: string, read: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const hit = map.get(key);
    // A clock that went back makes what was remembered stale rather than longer-lived.
    if (hit && hit.until > now && hit.until - this.ttl <= now) return hit.value;
    map.delete(key);
    const value = await read();
    if (this.ttl > 0) {
      if (map.size >= MAX_REMEMBERED) map.delete(map.keys().next().value!);
      map.set(key, { value, until: now + this.ttl });
    }
    return value;
  }
}

interface Remembered<T> {
  value: T;
  until: number;
}
