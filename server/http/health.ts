import Router from '@koa/router';
import { pingDatabase } from '../db/knex.js';
import type { AppDeps } from '../deps.js';
import { ApiError } from '../errors.js';

/** How long a readiness check may take before it counts as failed. */
const CHECK_TIMEOUT_MS = 2000;

async function check(what: () => Promise<unknown>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  try {
    await Promise.race([what(), timeout]);
    return 'ok';
  } catch (err) {
    return (err as Error).message || 'unreachable';
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Probes for orchestrators and load balancers, outside /dicom-web:
 * `/healthz` says the process is alive (restart it when this fails);
 * `/readyz` says it can serve, the database and the blob store both
 * answering (send it no traffic while this fails).
 */
export function healthRouter(deps: AppDeps): Router {
  const r = new Router();
  r.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  r.get('/readyz', async (ctx) => {
    const [database, blobs] = await Promise.all([check(() => pingDatabase(deps.db)), check(() => deps.blobs.ping())]);
    if (database !== 'ok' || blobs !== 'ok') {
      deps.log.warn({ database, blobs }, 'not ready');
      throw new ApiError(503, 'NotReady', `database: ${database}; blob store: ${blobs}`);
    }
    ctx.body = { status: 'ready', database, blobs };
  });
  return r;
}
