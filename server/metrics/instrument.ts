import type { AppDeps } from '../deps.js';
import { measureBlobStore } from './blob-store.js';
import { createMetrics, type Metrics } from './metrics.js';

/**
 * The dependencies with measurements: a Metrics of their own, the blob store
 * timed through it, the database pool watched. Deps that already have one
 * are returned as they are, so boot and createApp may both call it.
 */
export function instrument<D extends AppDeps>(deps: D): D & { metrics: Metrics } {
  if (deps.metrics) return deps as D & { metrics: Metrics };
  const metrics = createMetrics();
  metrics.watchPool(deps.db);
  return { ...deps, metrics, blobs: measureBlobStore(deps.blobs, metrics) };
}
