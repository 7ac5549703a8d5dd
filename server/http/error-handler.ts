import { STATUS_CODES } from 'node:http';
import type { Context, Next } from 'koa';
import { ApiError } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * The one catch (DESIGN.md house style 4): ApiError becomes its status and a
 * JSON body naming the problem; anything else is a 500 whose body says
 * "internal error" and nothing more, with the details in the log.
 */
export function errorHandler(log: Logger) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const started = process.hrtime.bigint();
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new ApiError(404, 'NotFound', `no route for ${ctx.method} ${ctx.path}`);
    } catch (err) {
      if (err instanceof ApiError) {
        ctx.status = err.status;
        ctx.set(err.headers);
        ctx.body = { error: err.code, message: err.message, ...err.details };
      } else if (isHttpError(err)) {
        ctx.status = err.status;
        ctx.body = { error: (STATUS_CODES[err.status] ?? 'Bad Request').replace(/[^A-Za-z]/g, ''), message: err.message };
      } else if (ctx.req.destroyed && ctx.req.errored) {
        // The client hung up mid-request (say, mid-STOW): nobody is left to
        // answer, and instances it had completed stay stored.
        log.warn({ method: ctx.method, path: ctx.path, code: (err as NodeJS.ErrnoException).code }, 'client closed the request before it ended');
        ctx.status = 499;
      } else {
        log.error({ err, method: ctx.method, path: ctx.path }, 'unhandled error');
        ctx.status = 500;
        ctx.body = { error: 'InternalError', message: 'internal error' };
      }
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log.info({ method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(ms * 10) / 10 }, 'request');
    }
  };
}

function isHttpError(err: unknown): err is { status: number; message: string } {
  const e = err as { status?: unknown; expose?: unknown };
  return typeof e?.status === 'number' && e.status >= 400 && e.status < 500 && e.expose === true;
}
