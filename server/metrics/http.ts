import type { Socket } from 'node:net';
import type { Context, Next } from 'koa';
import type { Metrics } from './metrics.js';

/** The label of requests no route matched (the viewer's files, 404s): never the raw path, which may hold UIDs. */
export const UNMATCHED_ROUTE = '(unmatched)';

// Bytes on each connection when its last request was counted: the bytes of a
// request are the connection's bytes since then, so keep-alive connections
// are counted once, and together every byte the server read or wrote is.
const counted = new WeakMap<Socket, { read: number; written: number }>();

/**
 * Counts and times every request, by method, the route pattern the router
 * matched (`/dicom-web/studies/:studyUid/metadata`) and final status, when
 * its response has gone out in full or its connection closed, so the time of
 * a streamed WADO-RS response is all of it. The outermost middleware, so it
 * sees the status the error handler chose.
 */
export function measureHttp(metrics: Metrics) {
  return (ctx: Context, next: Next): Promise<void> => {
    const start = performance.now();
    ctx.res.once('close', () => {
      const route = (ctx as Context & { _matchedRoute?: string })._matchedRoute ?? UNMATCHED_ROUTE;
      let received = 0;
      let sent = 0;
      const socket = ctx.req.socket;
      if (socket) {
        const last = counted.get(socket);
        received = socket.bytesRead - (last?.read ?? 0);
        sent = socket.bytesWritten - (last?.written ?? 0);
        if (last) {
          last.read = socket.bytesRead;
          last.written = socket.bytesWritten;
        } else counted.set(socket, { read: socket.bytesRead, written: socket.bytesWritten });
      }
      metrics.httpRequest(ctx.method, route, ctx.res.statusCode, (performance.now() - start) / 1000, received, sent);
    });
    return next();
  };
}
