import net from 'node:net';
import { z } from 'zod';
import { LABEL_PATTERN, ROLES, toRoles, type Principal } from '../access.js';
import { listAes, type AeRow } from '../db/aes.js';
import type { Db } from '../db/knex.js';

// Application entities as principals: every calling AE title Cairn answers
// is registered with the roles and clearances it acts under, like a user,
// and optionally the address it must call from, the port it listens on and
// whether a C-MOVE may send to it (C-MOVE names its destination by AE title
// alone, PS3.4 §C.4.2.1.2). The registry lives in the `aes` table, managed
// with `npm run ae` and /api/aes, and is read by every replica with a short
// refresh; or, when DIMSE_AES or DIMSE_AES_FILE is set, it is that JSON,
// read and checked once at boot, and the table is not used.

/** PS3.5 §6.2: an AE title is 1 to 16 characters of the default repertoire, no backslash or control character. */
export const AE_TITLE = /^[\x20-\x5b\x5d-\x7e]{1,16}$/;

/** The registry entry that gives every unregistered calling AE a principal. */
export const ANY_OTHER_AE = '*';

export interface Ae {
  readonly title: string;
  /** The address (IPv4 or IPv6 literal) an association from this AE must come from; any when absent. */
  readonly host?: string;
  /** The port this AE listens on as a C-STORE SCP (C-MOVE destinations, Storage Commitment reports). */
  readonly port?: number;
  /** A C-MOVE may name this AE as its destination (it has host and port). */
  readonly moveDestination: boolean;
  readonly principal: Principal;
}

export interface AeRegistry {
  readonly aes: ReadonlyMap<string, Ae>;
  /** The principal an unregistered calling AE acts as, when the registry names one ("*"); otherwise unregistered AEs are refused. */
  readonly unknown?: Principal;
}

/** Why a text cannot be a registered AE title ("*" included), or undefined when it can. */
export function aeTitleProblem(title: string): string | undefined {
  const t = title.trim();
  if (t === ANY_OTHER_AE) return undefined;
  if (t === '' || !AE_TITLE.test(t))
    return `AE title "${title}" must be 1 to 16 characters of the default repertoire, without backslash or control characters (PS3.5 §6.2)`;
  return undefined;
}

const title = z
  .string()
  .transform((t) => t.trim())
  .pipe(z.string().regex(AE_TITLE, 'must be 1 to 16 characters without backslash').or(z.literal(ANY_OTHER_AE)));
const roles = z.array(z.enum(ROLES));
const clearances = z.array(z.string().regex(LABEL_PATTERN, 'must be 1-64 letters, digits, "_", ".", ":" or "-"'));
const port = z.number().int().min(1).max(65535);

/** One AE as DIMSE_AES gives it. `moveDestination` defaults to whether host and port are given, as before it could be said. */
const entry = z
  .object({
    title,
    host: z.string().min(1).optional(),
    port: port.optional(),
    roles: roles.default([]),
    clearances: clearances.default([]),
    moveDestination: z.boolean().optional(),
  })
  .strict();

/**
 * One AE as /api/aes and `npm run ae` take it. The host is an address, not a
 * name: it is compared with the address an association comes from, which a
 * name would need resolving for at every association.
 */
export const aeInput = z
  .object({
    host: z
      .string()
      .refine((h) => net.isIP(h) !== 0, 'must be an IPv4 or IPv6 address')
      .nullable()
      .default(null),
    port: port.nullable().default(null),
    roles: roles.default([]),
    clearances: clearances.default([]),
    moveDestination: z.boolean().default(false),
  })
  .strict();

export type AeInput = z.infer<typeof aeInput>;

/** Why an AE as given cannot be registered under `title`, or undefined when it can (rules the field types do not say). */
export function aeRuleProblem(title: string, ae: { host?: string | null; port?: number | null; moveDestination?: boolean }): string | undefined {
  if (title === ANY_OTHER_AE && (ae.host != null || ae.port != null || ae.moveDestination))
    return 'the "*" entry (unregistered callers) takes roles and clearances only';
  if (ae.moveDestination && (ae.host == null || ae.port == null)) return 'a move destination needs host and port';
  return undefined;
}

/** The problems zod found, as one sentence naming each field. */
export function issuesText(error: z.ZodError): string {
  return error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}

function principalOf(t: string, r: readonly string[], c: readonly string[]): Principal {
  return Object.freeze({ sub: `ae:${t}`, roles: Object.freeze(toRoles(r)), clearances: Object.freeze([...c]) });
}

function registryOf(
  entries: Iterable<{ title: string; host?: string; port?: number; moveDestination: boolean; roles: readonly string[]; clearances: readonly string[] }>,
): AeRegistry {
  const aes = new Map<string, Ae>();
  let unknown: Principal | undefined;
  for (const e of entries) {
    const principal = principalOf(e.title, e.roles, e.clearances);
    if (e.title === ANY_OTHER_AE) {
      unknown = principal;
      continue;
    }
    aes.set(e.title, Object.freeze({ title: e.title, host: e.host, port: e.port, moveDestination: e.moveDestination, principal }));
  }
  return Object.freeze({ aes, unknown });
}

/** The registry from its JSON text: `[{ "title": "CT1", "host": "10.1.2.3", "port": 104, "roles": ["uploader"] }, …]`. */
export function parseAes(text: string): AeRegistry {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`the AE registry is not JSON (${(err as Error).message})`);
  }
  const parsed = z.array(entry).safeParse(raw);
  if (!parsed.success) throw new Error(`the AE registry: ${issuesText(parsed.error)}`);
  const seen = new Set<string>();
  const entries = parsed.data.map((e) => {
    if (seen.has(e.title)) throw new Error(`the AE registry names ${e.title} twice`);
    seen.add(e.title);
    const moveDestination = e.moveDestination ?? (e.host !== undefined && e.port !== undefined);
    const problem = aeRuleProblem(e.title, { ...e, moveDestination: e.title === ANY_OTHER_AE ? e.moveDestination : moveDestination });
    if (problem) throw new Error(`the AE registry: ${e.title}: ${problem}`);
    return { ...e, moveDestination };
  });
  return registryOf(entries);
}

/** The registry from the rows of the `aes` table. */
export function registryFromRows(rows: readonly AeRow[]): AeRegistry {
  return registryOf(
    rows.map((r) => ({
      title: r.title,
      host: r.host ?? undefined,
      port: r.port ?? undefined,
      moveDestination: r.move_destination,
      roles: r.roles,
      clearances: r.clearances,
    })),
  );
}

/** Who a calling AE is, or why it is refused (PS3.8 §9.3.4: A-ASSOCIATE-RJ, calling AE title not recognised). */
export function identifyAe(registry: AeRegistry, callingAe: string, address: string | null): { ok: true; principal: Principal } | { ok: false; why: string } {
  const ae = registry.aes.get(callingAe.trim());
  if (!ae) {
    if (registry.unknown) return { ok: true, principal: { ...registry.unknown, sub: `ae:${callingAe.trim()}` } };
    return { ok: false, why: 'calling AE title is not registered' };
  }
  if (ae.host !== undefined && normaliseAddress(address) !== normaliseAddress(ae.host))
    return { ok: false, why: 'calling AE called from an address other than its registered one' };
  return { ok: true, principal: ae.principal };
}

/** An IPv4 peer may be reported as IPv4-mapped IPv6 (`::ffff:10.1.2.3`). */
function normaliseAddress(a: string | null | undefined): string {
  return (a ?? '').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1').toLowerCase();
}

/**
 * The registry as each association sees it. From the table, it is read whole
 * (a registry is tens or hundreds of rows) at most once per `refreshSeconds`,
 * so an association costs no query, and an AE changed or removed on any
 * replica is seen by every other at its next association after at most that
 * long. A calling AE the registry refuses has it read again first, so an AE
 * just added, or given its new address, is let in at once: that costs a
 * refused association one query, as its audit row costs it one write. From
 * the configuration it never changes.
 */
export interface AeDirectory {
  readonly source: 'configuration' | 'database';
  current(): Promise<AeRegistry>;
  /** The registry read again now (before refusing a calling AE). */
  recheck(): Promise<AeRegistry>;
}

export function createAeDirectory(db: Db, cfg: { aesSource: 'configuration' | 'database'; registry: AeRegistry; aesRefreshSeconds: number }): AeDirectory {
  if (cfg.aesSource === 'configuration') {
    const registry = cfg.registry;
    return { source: 'configuration', current: async () => registry, recheck: async () => registry };
  }
  const ttl = cfg.aesRefreshSeconds * 1000;
  let registry: AeRegistry | undefined;
  let loadedAt = Number.NEGATIVE_INFINITY;
  let loading: Promise<AeRegistry> | undefined;
  const reload = () =>
    (loading ??= listAes(db)
      .then((rows) => {
        registry = registryFromRows(rows);
        loadedAt = Date.now();
        return registry;
      })
      .finally(() => {
        loading = undefined;
      }));
  return {
    source: 'database',
    async current() {
      const age = Date.now() - loadedAt;
      // A clock that went back makes the registry stale rather than longer-lived.
      if (registry && age < ttl && age >= 0) return registry;
      return reload();
    },
    recheck: reload,
  };
}
