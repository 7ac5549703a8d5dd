// Black-box DICOMweb (DICOM PS3.18) conformance suite: runs over real HTTP against any base URL.
// Checks follow the standard, not any particular server. No imports from server/.
import { loadSamples, makeSynthetic } from './fixtures.js';
import type { Check, Ctx } from './http.js';
import { stowChecks } from './checks-stow.js';
import { qidoChecks } from './checks-qido.js';
import { wadoChecks } from './checks-wado.js';
import { wadoUriChecks } from './checks-wado-uri.js';
import { depthChecks } from './checks-depth.js';
import { clientChecks } from './checks-client.js';

export interface CheckResult {
  name: string;
  ok: boolean;
  detail?: string;
}

export interface ConformanceOptions {
  base: string;
  fixturesDir: string;
  log?: (line: string) => void;
  deleteSupported?: boolean;
  /** Sent with every request, such as `{ Authorization: 'Bearer …' }` for a server that wants a token. */
  headers?: Record<string, string>;
  /** The WADO-URI address (PS3.18 §9), such as http://host/wado; its checks pass with a note without it. */
  wadoUri?: string;
}

/** Every check in run order: STOW first (it stores the data the others query and retrieve). */
export const allChecks: Check[] = [...stowChecks, ...qidoChecks, ...wadoChecks, ...wadoUriChecks, ...depthChecks, ...clientChecks];

const TIMEOUT_MS = 30_000;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => {
    t = setTimeout(() => rej(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

function message(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as { cause?: unknown }).cause;
    return cause instanceof Error ? `${e.message} (${cause.message})` : e.message;
  }
  return String(e);
}

export async function runConformance(opts: ConformanceOptions): Promise<CheckResult[]> {
  const log = opts.log ?? (() => {});
  const results: CheckResult[] = [];
  const record = (r: CheckResult) => {
    results.push(r);
    log(`${r.ok ? 'PASS' : 'FAIL'} ${r.name}${r.detail ? `: ${r.detail}` : ''}`);
  };
  let ctx: Ctx;
  try {
    ctx = {
      base: opts.base.replace(/\/+$/, ''),
      samples: loadSamples(opts.fixturesDir),
      syn: makeSynthetic(),
      deleteSupported: opts.deleteSupported ?? false,
      notes: [],
      headers: opts.headers ?? {},
      ...(opts.wadoUri ? { wadoUri: opts.wadoUri } : {}),
    };
  } catch (e) {
    record({ name: 'setup: load fixtures and build synthetic instances', ok: false, detail: message(e) });
    return results;
  }
  for (const c of allChecks) {
    try {
      const detail = await withTimeout(c.run(ctx), TIMEOUT_MS);
      record({ name: c.name, ok: true, ...(detail ? { detail } : {}) });
    } catch (e) {
      record({ name: c.name, ok: false, detail: message(e) });
    }
  }
  return results;
}
