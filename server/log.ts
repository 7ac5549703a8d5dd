import { pino, type Logger } from 'pino';
import type { Config } from './config.js';

export type { Logger };

// Structured logs, one JSON line per event (DESIGN.md house style 9). Callers
// pass UIDs, never patient names, IDs or birth dates.
// Lines are written in the background in 4 KB batches: a synchronous write
// per request line cost the WADO path a fifth of its throughput. flush() runs
// at shutdown so the last lines are not lost.
export function createLogger(config: Pick<Config, 'logLevel'>): Logger {
  const dest = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  return pino({ level: config.logLevel, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, dest);
}
