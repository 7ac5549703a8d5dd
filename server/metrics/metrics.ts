import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { StoreOutcome } from '../archive.js';
import type { Db } from '../db/knex.js';

// What Cairn measures, for Prometheus (GET /metrics, server/metrics/routes.ts),
// with prom-client. One Metrics per app (its own registry), so that apps in
// one process (tests, or a DIMSE listener beside HTTP sharing one) do not
// count into each other's series unless they are given the same one.

/** Where a blob store failure came from: a missing key is an answer, not a fault. */
export type BlobErrorKind = 'missing' | 'unavailable' | 'other';
export type BlobOp = 'put' | 'get' | 'read' | 'delete' | 'list' | 'ping';

export interface Metrics {
  readonly registry: Registry;
  /** One HTTP request answered (or broken off): its time in seconds and the bytes read and written for it. */
  httpRequest(method: string, route: string, status: number, seconds: number, received: number, sent: number): void;
  /** Counts the instances of one STOW-RS request by outcome and DICOM reason code. */
  stowOutcomes(outcomes: readonly StoreOutcome[]): void;
  blobOp(op: BlobOp, seconds: number, error?: BlobErrorKind): void;
  /** A failure after the operation had resolved (a get's stream breaking off). */
  blobError(op: BlobOp, kind: BlobErrorKind): void;
  auditWrite(seconds: number): void;
  /** Reports the connections of this knex pool at each scrape. */
  watchPool(db: Db): void;
  /** The text exposition of these series and the process's own. */
  exposition(): Promise<string>;
  readonly contentType: string;
}

const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const BLOB_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const AUDIT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** A DICOM status as the label value: four hex digits, as the standard writes them (0xA700). */
export function hexReason(code: number): string {
  return `0x${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

interface TarnPool {
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
  numPendingCreates(): number;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  const requests = tally(registry, {
    name: 'cairn_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
  });
  const duration = new Histogram({
    name: 'cairn_http_request_duration_seconds',
    help: 'Time from a request arriving to its response being sent in full (or the connection closing), by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: HTTP_BUCKETS,
    registers: [registry],
  });
  const bytesIn = tally(registry, {
    name: 'cairn_http_received_bytes_total',
    help: 'Bytes received on the connection while serving requests (headers and bodies), by route pattern',
    labelNames: ['route'] as const,
  });
  const bytesOut = tally(registry, {
    name: 'cairn_http_sent_bytes_total',
    help: 'Bytes sent on the connection while serving requests (headers and bodies), by route pattern',
    labelNames: ['route'] as const,
  });
  const stow = new Counter({
    name: 'cairn_stow_instances_total',
    help: 'Instances of STOW-RS requests, by outcome (stored, failed) and DICOM reason code (a warning or failure reason; 0x0000 when stored without a warning)',
    labelNames: ['outcome', 'reason'] as const,
    registers: [registry],
  });
  const blobDuration = new Histogram({
    name: 'cairn_blob_operation_duration_seconds',
    help: 'Blob store operations, by operation, until they resolve (a get: until its stream is open)',
    labelNames: ['op'] as const,
    buckets: BLOB_BUCKETS,
    registers: [registry],
  });
  const blobErrors = new Counter({
    name: 'cairn_blob_operation_errors_total',
    help: 'Blob store operations that failed, by operation and kind (missing: no blob under the key; unavailable: the store could not be reached; other)',
    labelNames: ['op', 'kind'] as const,
    registers: [registry],
  });
  const audit = new Histogram({
    name: 'cairn_audit_write_duration_seconds',
    help: 'Time to append one audit row (every audited request waits for it)',
    buckets: AUDIT_BUCKETS,
    registers: [registry],
  });
  const pools: Db[] = [];
  new Gauge({
    name: 'cairn_db_pool_connections',
    help: 'Database connections of the pool: used, free, and requests waiting for one (pending)',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      let used = 0;
      let free = 0;
      let pending = 0;
      for (const db of pools) {
        const pool = (db.client as { pool?: TarnPool }).pool;
        if (!pool) continue;
        used += pool.numUsed();
        free += pool.numFree();
        pending += pool.numPendingAcquires();
      }
      this.set({ state: 'used' }, used);
      this.set({ state: 'free' }, free);
      this.set({ state: 'pending' }, pending);
    },
  });

  return {
    registry,
    httpRequest(method, route, status, seconds, received, sent) {
      const code = String(status);
      requests.add(`${method} ${code} ${route}`, () => ({ method, route, status: code }), 1);
      duration.observe({ method, route, status: code }, seconds);
      if (received > 0) bytesIn.add(route, () => ({ route }), received);
      if (sent > 0) bytesOut.add(route, () => ({ route }), sent);
    },
    stowOutcomes(outcomes) {
      for (const o of outcomes) {
        if (o.ok) stow.inc({ outcome: 'stored', reason: hexReason(o.warning ?? 0) });
        else stow.inc({ outcome: 'failed', reason: hexReason(o.reason) });
      }
    },
    blobOp(op, seconds, error) {
      blobDuration.observe({ op }, seconds);
      if (error) blobErrors.inc({ op, kind: error });
    },
    blobError(op, kind) {
      blobErrors.inc({ op, kind });
    },
    auditWrite(seconds) {
      audit.observe(seconds);
    },
    watchPool(db) {
      if (!pools.includes(db)) pools.push(db);
    },
    async exposition() {
      return (await processRegistry().metrics()) + (await registry.metrics());
    },
    contentType: registry.contentType,
  };
}

/**
 * A counter added to on the hot path (every HTTP request): the additions are
 * summed in a map by a key the caller builds and handed to prom-client when
 * it collects, at a scrape. prom-client's own inc() sorts and joins the labels
 * into a key at every call, which cost several µs a request.
 */
function tally<L extends string>(registry: Registry, config: { name: string; help: string; labelNames: readonly L[] }) {
  const pending = new Map<string, { labels: Record<L, string>; n: number }>();
  new Counter<L>({
    ...config,
    registers: [registry],
    collect() {
      for (const p of pending.values()) {
        if (p.n === 0) continue;
        this.inc(p.labels, p.n);
        p.n = 0;
      }
    },
  });
  return {
    add(key: string, labels: () => Record<L, string>, n: number): void {
      const p = pending.get(key);
      if (p) p.n += n;
      else pending.set(key, { labels: labels(), n });
    },
  };
}

// The process's own series (CPU, memory, event-loop lag, GC, handles), by
// prom-client's default collectors. They describe the one process, and their
// collectors install process-wide observers that are never removed, so they
// are made once per process, at the first scrape, rather than once per app.
let processMetrics: Registry | undefined;
function processRegistry(): Registry {
  if (!processMetrics) {
    processMetrics = new Registry();
    // Unprefixed (process_cpu_seconds_total, nodejs_eventloop_lag_seconds…), as the usual Node.js dashboards expect.
    collectDefaultMetrics({ register: processMetrics });
  }
  return processMetrics;
}
