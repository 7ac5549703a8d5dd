// Percentiles, RSS sampling and output formatting.
import { readFileSync } from 'node:fs';
import type { LoopResult } from './client.js';

/** Nearest-rank percentile in ms (null when there are no samples). */
export function pct(samples: number[], p: number): number | null {
  if (!samples.length) return null;
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** A phase is 'failed' when any of its requests failed, or when it made no request at all. */
export type Status = 'ok' | 'failed';
export const status = (r: { count: number; errors: number }): Status => (r.errors || !r.count ? 'failed' : 'ok');
export interface Lat {
  status: Status;
  p50: number | null;
  p95: number | null;
  n: number;
  errors: number;
  avgBytes: number | null;
  firstError?: string;
}
export function lat(r: LoopResult): Lat {
  const out: Lat = {
    status: status(r),
    p50: round(pct(r.latencies, 50)),
    p95: round(pct(r.latencies, 95)),
    n: r.count,
    errors: r.errors,
    avgBytes: r.count ? Math.round(r.bytes / r.count) : null,
  };
  if (r.firstError) out.firstError = r.firstError;
  return out;
}

export function round(v: number | null, digits = 2): number | null {
  if (v === null || !Number.isFinite(v)) return null;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export const MB = 1e6;
export function mbps(bytes: number, ms: number): number | null {
  return ms > 0 ? round(bytes / MB / (ms / 1000)) : null;
}

/** VmRSS of exactly one process (children such as an embedded postgres are not included). */
export function rssKiB(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export class RssSampler {
  peakKiB = 0;
  samples = 0;
  private timer?: NodeJS.Timeout;
  /** The phase running now, and the one the peak was seen in. */
  phase = '';
  peakPhase = '';
  constructor(
    private pid: number,
    private everyMs = 200,
  ) {}
  start(): this {
    const tick = (): void => {
      const v = rssKiB(this.pid);
      if (v !== null) {
        this.samples++;
        if (v > this.peakKiB) {
          this.peakKiB = v;
          this.peakPhase = this.phase;
        }
      }
    };
    tick();
    this.timer = setInterval(tick, this.everyMs);
    this.timer.unref();
    return this;
  }
  stop(): number | null {
    if (this.timer) clearInterval(this.timer);
    return this.samples ? round(this.peakKiB / 1024, 1) : null;
  }
}

export type Row = [string, string];
export function fmt(v: number | null | undefined, unit = ''): string {
  return v === null || v === undefined ? 'n/a' : `${v}${unit}`;
}
export function fmtLat(l: Lat): string {
  const e = l.errors ? `  (${l.errors} errors${l.firstError ? ': ' + l.firstError.slice(0, 80) : ''})` : '';
  const kb = l.avgBytes === null ? '' : `  ${l.avgBytes < 1e6 ? (l.avgBytes / 1e3).toFixed(1) + ' kB' : (l.avgBytes / 1e6).toFixed(2) + ' MB'}/reply`;
  return `${l.status === 'failed' ? 'FAILED  ' : ''}p50 ${fmt(l.p50, ' ms')}  p95 ${fmt(l.p95, ' ms')}  n=${l.n}${kb}${e}`;
}

export function table(rows: Row[]): string {
  const w = Math.max(...rows.map((r) => r[0].length));
  const line = '-'.repeat(w + 50);
  return [line, ...rows.map(([k, v]) => (v === '' ? `${k}` : `${k.padEnd(w)}  ${v}`)), line].join('\n');
}
