import { pino, type Logger } from 'pino';
import type { Config } from './config.js';

export type { Logger };

// Structured logs, one JSON line per event (DESIGN.md house style 9). Callers
// pass UIDs, never patient names, IDs or birth dates.
export function createLogger(config: Pick<Config, 'logLevel'>): Logger {
  return pino({ level: config.logLevel, base: undefined, timestamp: pino.stdTimeFunctions.isoTime });
}
