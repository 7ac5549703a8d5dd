import { boot } from '../boot.js';
import { loadConfig } from '../config.js';
import { createLogger } from '../log.js';

// `npm run migrate`: boot runs the migrations; then stop.
const config = loadConfig();
const deps = await boot(config, createLogger(config));
deps.log.info('migrations are up to date');
await deps.shutdown();
