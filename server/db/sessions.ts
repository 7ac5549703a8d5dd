import type { Role } from '../access.js';
import { prepared, type Db } from './knex.js';

// Sessions of the login page and revoked bearer tokens (see the sessions
// migration). Ending either is a row written here; every replica reads them.

export interface OpenSession {
  username: string;
  roles: Role[];
  clearances: string[];
}

export async function createSession(db: Db, s: { id: string; username: string; ttlSeconds: number; client: string | null }): Promise<void> {
  await db('sessions').insert({
    id: s.id,
    username: s.username,
    client: s.client,
    expires_at: db.raw(`now() + make_interval(secs => ?)`, [s.ttlSeconds]),
  });
}

// One statement checks the session is open and its account still there,
// notes when it was last seen, and gives the account's current roles.
const TOUCH_SESSION = `update sessions s set last_seen_at = now()
  from users u
  where s.id = $1 and s.revoked_at is null and s.expires_at > now() and u.username = s.username
  returning u.username, u.roles, u.clearances`;

/** The account of an open session (not ended, not expired, its account not removed), or undefined. */
export async function touchSession(db: Db, id: string): Promise<OpenSession | undefined> {
  const [row] = await prepared<OpenSession>(db, 'cairn_session_touch', TOUCH_SESSION, [id]);
  return row;
}

/** Ends one session; false when it was not open. */
export async function revokeSession(db: Db, id: string, reason: string): Promise<boolean> {
  return (await db('sessions').where({ id }).whereNull('revoked_at').update({ revoked_at: db.fn.now(), revoked_reason: reason })) === 1;
}

/** The sessions of an account that are still open (ended by any change of its roles, clearances or existence). */
export async function countOpenSessions(db: Db, username: string): Promise<number> {
  const row = await db('sessions').where({ username }).whereNull('revoked_at').where('expires_at', '>', db.fn.now()).count<{ n: string }[]>('* as n').first();
  return Number(row?.n ?? 0);
}

/** Records a bearer token's jti as revoked; false when it already was. */
export async function revokeToken(db: Db, r: { jti: string; by: string | null; reason: string | null }): Promise<{ revokedAt: Date } | undefined> {
  const [row] = await db('revoked_tokens')
    .insert({ jti: r.jti, revoked_by: r.by, reason: r.reason })
    .onConflict('jti')
    .ignore()
    .returning<{ revoked_at: Date }[]>('revoked_at');
  return row ? { revokedAt: row.revoked_at } : undefined;
}

/** Every revoked jti. The list stays short: tokens are revoked one at a time, by hand. */
export async function revokedTokenIds(db: Db): Promise<string[]> {
  const rows = await prepared<{ jti: string }>(db, 'cairn_revoked_tokens', 'select jti from revoked_tokens', []);
  return rows.map((r) => r.jti);
}
