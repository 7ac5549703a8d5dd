import Koa from 'koa';
import type { AppDeps } from './deps.js';
import { apiRouter } from './api/routes.js';
import { auditTrail } from './audit.js';
import { authenticate } from './auth/authenticate.js';
import { authRouter } from './auth/routes.js';
import { capabilitiesRouter } from './dicomweb/capabilities.js';
import { collectionRouters } from './collections/routes.js';
import { dicomwebRouter } from './dicomweb/routes.js';
import { wadoUriRouter } from './dicomweb/wado-uri.js';
import { errorHandler } from './http/error-handler.js';
import { exportPageRouter } from './export/routes.js';
import { healthRouter } from './http/health.js';
import { measureHttp } from './metrics/http.js';
import { instrument } from './metrics/instrument.js';
import { metricsRouter } from './metrics/routes.js';
import { provenanceRouter } from './research/provenance.js';
import { uploadRouter } from './upload/routes.js';
import { viewerRouter } from '../viewer/routes.js';

/** Middleware order and routers; no logic here. */
export function createApp(given: AppDeps): Koa {
  const deps = instrument(given);
  const app = new Koa();
  // Behind a trusted proxy, ctx.protocol and ctx.host (and so every URL Cairn
  // writes: RetrieveURL, BulkDataURI, the viewer's data source) follow X-Forwarded-*.
  app.proxy = deps.config.trustProxy;
  // Errors after a response has started reach here instead of the error
  // handler: a client that hangs up mid-stream is routine, anything else is ours.
  app.on('error', (err: Error & { code?: string }) => {
    // HPE_* are HTTP parse errors of what the client sent (such as a body cut off mid-chunk).
    const clientGone = ['ECONNRESET', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE'].includes(err.code ?? '') || (err.code ?? '').startsWith('HPE_');
    if (clientGone) deps.log.debug({ code: err.code }, 'client closed the connection mid-response');
    else deps.log.error({ err }, 'error while streaming a response');
  });
  app.use(measureHttp(deps.metrics));
  app.use(errorHandler(deps.log));
  app.use(healthRouter(deps).routes());
  app.use(authenticate(deps));
  app.use(auditTrail(deps));
  for (const router of [
    dicomwebRouter(deps),
    apiRouter(deps),
    provenanceRouter(deps),
    authRouter(deps),
    uploadRouter(deps),
    ...collectionRouters(deps),
    exportPageRouter(),
  ]) {
    app.use(router.routes());
    app.use(router.allowedMethods({ throw: true }));
  }
  // WADO-URI (PS3.18 §9) at /wado and /dicom-web/wado.
  app.use(wadoUriRouter(deps).routes());
  app.use(metricsRouter(deps, deps.metrics).routes());
  // The capabilities description (PS3.18 §8.9), generated from the DICOMweb route table.
  app.use(capabilitiesRouter(deps).routes());
  // Last: the viewer answers GET/HEAD of every path no other router owns.
  app.use(viewerRouter(deps));
  return app;
}
