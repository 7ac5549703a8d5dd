import Koa from 'koa';
import type { AppDeps } from './deps.js';
import { dicomwebRouter } from './dicomweb/routes.js';
import { errorHandler } from './http/error-handler.js';

/** Middleware order and routers; no logic here. */
export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  app.proxy = false;
  app.use(errorHandler(deps.log));
  const router = dicomwebRouter(deps);
  app.use(router.routes());
  app.use(router.allowedMethods({ throw: true }));
  return app;
}
