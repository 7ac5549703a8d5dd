import { toRoles, type Principal } from '../access.js';
import type { Db } from '../db/knex.js';
import { revokedTokenIds, touchSession } from '../db/sessions.js';

/**
 * Whether a session is still open and a bearer token not revoked, as the
 * database says, remembered for at most `seconds` (AUTH_REVOCATION_CHECK_SECONDS).
 * One per app: a session ended or a token revoked through this app is
 * refused by it at once; every other replica refuses it within `seconds`,
 * when its own memory of that session or of the revoked list runs out.
 *
 * Sessions are asked about one by one (one statement per session and
 * interval, which also notes when it was last seen). Revoked tokens are read
 * as a whole list once per interval, whatever the number of tokens in use,
 * so a request with a token adds no query: the list of revoked ones is short
 * and the same for everyone.
 */
export interface RevocationCheck {
  /** The account of an open session, with its current roles and clearances; undefined once it has ended. */
  session(sid: string): Promise<Principal | undefined>;
  /** This app learns at once that a session ended (logout). */
  sessionEnded(sid: string): void;
  tokenRevoked(jti: string): Promise<boolean>;
  /** This app learns at once that a token was revoked. */
  tokenRevokedHere(jti: string): void;
}

const MAX_SESSIONS_REMEMBERED = 10_000;

export function createRevocationCheck(db: Db, seconds: number): RevocationCheck {
  const ttl = seconds * 1000;
  const sessions = new Map<string, { principal: Principal | undefined; until: number }>();
  let revoked = new Set<string>();
  // Revoked through this app: kept across reloads, so a reload that read the
  // table just before the revocation was committed does not forget it.
  const revokedHere = new Set<string>();
  let loadedAt = Number.NEGATIVE_INFINITY;
  let loading: Promise<void> | undefined;

  const reload = () =>
    (loading ??= revokedTokenIds(db)
      .then((ids) => {
        revoked = new Set([...ids, ...revokedHere]);
        loadedAt = Date.now();
      })
      .finally(() => {
        loading = undefined;
      }));

  return {
    async session(sid) {
      const now = Date.now();
      const hit = sessions.get(sid);
      // Remembered while fresh; a clock that went back (a step of NTP, or a
      // test's clock) makes what was remembered stale rather than longer-lived.
      if (hit && hit.until > now && hit.until - ttl <= now) return hit.principal;
      sessions.delete(sid);
      const open = await touchSession(db, sid);
      const principal: Principal | undefined = open
        ? Object.freeze({ sub: open.username, roles: Object.freeze(toRoles(open.roles)), clearances: Object.freeze([...open.clearances]) })
        : undefined;
      if (ttl > 0) {
        if (sessions.size >= MAX_SESSIONS_REMEMBERED) sessions.delete(sessions.keys().next().value!);
        sessions.set(sid, { principal, until: now + ttl });
      }
      return principal;
    },
    sessionEnded(sid) {
      sessions.set(sid, { principal: undefined, until: Date.now() + ttl });
    },
    async tokenRevoked(jti) {
      const age = Date.now() - loadedAt;
      if (age >= ttl || age < 0) await reload();
      return revoked.has(jti);
    },
    tokenRevokedHere(jti) {
      revokedHere.add(jti);
      revoked.add(jti);
    },
  };
}

declare module 'koa' {
  interface DefaultState {
    /** This app's revocation check (auth/authenticate.ts), for the routes that end sessions and revoke tokens. */
    revocation?: RevocationCheck;
  }
}
