import { pino, type Logger } from 'pino';
import type { Config } from './config.js';

export type { Logger };

// Structured logs, one JSON line per event (DESIGN.md house style 9). Callers
// pass UIDs, never patient names, IDs or birth dates.
// Lines are written in the background (not one blocking write per request
// line, which cost the WADO path noticeably), but without holding them back,
// so the start-up lines show at once. flush() runs at shutdown.
export function createLogger(config: Pick<Config, 'logLevel'>): Logger {
  const dest = pino.destination({ dest: 1, sync: false, minLength: 0 });
  return pino({ level: config.logLevel, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, dest);
}
