import { z } from 'zod';
import { LABEL_PATTERN, ROLES, type Principal } from '../access.js';

// Application entities as principals: every calling AE title Cairn answers
// is registered with the roles and clearances it acts under, like a user,
// and optionally the address it must call from and the port it listens on
// (for C-MOVE, which names its destination by AE title alone). The registry
// is part of the configuration (DIMSE_AES or DIMSE_AES_FILE), read and
// checked once at boot.

/** PS3.5 §6.2: an AE title is 1 to 16 characters of the default repertoire, no backslash or control character. */
export const AE_TITLE = /^[\x20-\x5b\x5d-\x7e]{1,16}$/;

export interface Ae {
  readonly title: string;
  /** The address (IPv4 or IPv6 literal) an association from this AE must come from; any when absent. */
  readonly host?: string;
  /** The port this AE listens on as a C-STORE SCP: a C-MOVE destination needs it and host. */
  readonly port?: number;
  readonly principal: Principal;
}

export interface AeRegistry {
  readonly aes: ReadonlyMap<string, Ae>;
  /** The principal an unregistered calling AE acts as, when the registry names one ("*"); otherwise unregistered AEs are refused. */
  readonly unknown?: Principal;
}

const entry = z
  .object({
    title: z
      .string()
      .transform((t) => t.trim())
      .pipe(z.string().regex(AE_TITLE, 'must be 1 to 16 characters without backslash').or(z.literal('*'))),
    host: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    roles: z.array(z.enum(ROLES)).default([]),
    clearances: z.array(z.string().regex(LABEL_PATTERN)).default([]),
  })
  .strict();

const schema = z.array(entry);

/** The registry from its JSON text: `[{ "title": "CT1", "host": "10.1.2.3", "port": 104, "roles": ["uploader"] }, …]`. */
export function parseAes(text: string): AeRegistry {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`the AE registry is not JSON (${(err as Error).message})`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new Error(`the AE registry: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const aes = new Map<string, Ae>();
  let unknown: Principal | undefined;
  for (const e of parsed.data) {
    const principal: Principal = Object.freeze({ sub: `ae:${e.title}`, roles: Object.freeze([...e.roles]), clearances: Object.freeze([...e.clearances]) });
    if (e.title === '*') {
      if (e.host !== undefined || e.port !== undefined)
        throw new Error('the AE registry: the "*" entry (unregistered callers) takes roles and clearances only');
      unknown = principal;
      continue;
    }
    if (aes.has(e.title)) throw new Error(`the AE registry names ${e.title} twice`);
    aes.set(e.title, Object.freeze({ title: e.title, host: e.host, port: e.port, principal }));
  }
  return Object.freeze({ aes, unknown });
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
