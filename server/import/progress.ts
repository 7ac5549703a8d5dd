import cliProgress from 'cli-progress';
import type { ImportCounters } from './import.js';

// An import's progress on stderr: a bar on a terminal (files, MB, rate,
// ETA), a plain line every so often otherwise (a log file, a pipe, nohup).

export interface Totals {
  files: number;
  bytes: number;
  /** The counting walk has reached its end: the totals are final. */
  final: boolean;
}

const MB = 1024 * 1024;

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** The figures both displays show. ETA goes by bytes, once the totals are known. */
export function progressFigures(c: ImportCounters, t: Totals, elapsedMs: number) {
  const seconds = Math.max(elapsedMs / 1000, 0.001);
  const bytesPerSec = c.bytes / seconds;
  const eta = t.final && bytesPerSec > 0 ? duration((t.bytes - c.bytes) / bytesPerSec) : '?';
  return {
    done: c.files,
    totalText: t.final ? String(t.files) : `${t.files}+`,
    mb: (c.bytes / MB).toFixed(1),
    totalMb: (t.bytes / MB).toFixed(1),
    rate: `${(c.files / seconds).toFixed(1)} files/s ${(bytesPerSec / MB).toFixed(1)} MB/s`,
    eta,
    counts: `stored ${c.stored}, already present ${c.present}, skipped ${c.skipped}, failed ${c.failed}`,
  };
}

export function progressLine(c: ImportCounters, t: Totals, elapsedMs: number): string {
  const f = progressFigures(c, t, elapsedMs);
  return `progress: ${f.done}/${f.totalText} files, ${f.mb}/${f.totalMb} MB, ${f.rate}, ETA ${f.eta} (${f.counts})`;
}

export function startProgress(
  opts: { tty: boolean; everySeconds: number; out: NodeJS.WriteStream },
  c: ImportCounters,
  totals: () => Totals,
): { stop(): void } {
  const started = Date.now();
  if (opts.tty) {
    const bar = new cliProgress.SingleBar(
      {
        stream: opts.out,
        format: '{bar} {percentage}% | {value}/{totalText} files | {mb} MB | {rate} | ETA {etaText} | failed {failed}',
        hideCursor: true,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    const payload = () => {
      const f = progressFigures(c, totals(), Date.now() - started);
      return { ...f, etaText: f.eta, failed: c.failed };
    };
    bar.start(Math.max(1, totals().files), 0, payload());
    const timer = setInterval(() => {
      bar.setTotal(Math.max(1, totals().files, c.files));
      bar.update(c.files, payload());
    }, 200);
    return {
      stop() {
        clearInterval(timer);
        bar.setTotal(Math.max(1, totals().files, c.files));
        bar.update(c.files, payload());
        bar.stop();
      },
    };
  }
  const timer = setInterval(() => opts.out.write(`${progressLine(c, totals(), Date.now() - started)}\n`), opts.everySeconds * 1000);
  return {
    stop() {
      clearInterval(timer);
      opts.out.write(`${progressLine(c, totals(), Date.now() - started)}\n`);
    },
  };
}
