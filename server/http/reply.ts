import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Context } from 'koa';
import { multipartBuffer, multipartLength, multipartStream, openFirst, type OutPart } from './multipart.js';

/** A retrieve's answer: one body, or a multipart/related payload of parts (PS3.18 §8.6.1.2). */
export type Reply =
  | { multipart: false; part: OutPart & { length: number }; status?: 200 | 206; headers?: Record<string, string> }
  | { multipart: true; partType: string; parts: OutPart[]; headers?: Record<string, string> };

/**
 * Sets the response for a Reply. The first body is opened before the
 * response starts, so a blob store that is down answers 503 before any byte
 * of a 200 is sent.
 */
export async function sendReply(ctx: Context, reply: Reply): Promise<void> {
  if (reply.headers) ctx.set(reply.headers);
  if (!reply.multipart) {
    if (reply.status) ctx.status = reply.status;
    ctx.type = reply.part.contentType;
    ctx.length = reply.part.length;
    const body = await reply.part.body();
    ctx.body = Buffer.isBuffer(body) || body instanceof Readable ? body : Readable.from(body, { objectMode: false });
    return;
  }
  const boundary = randomUUID();
  ctx.type = `multipart/related; type="${reply.partType}"; boundary=${boundary}`;
  const length = multipartLength(boundary, reply.parts);
  if (length !== undefined) ctx.length = length;
  const [only] = reply.parts;
  // One part that can be read whole goes out as one buffer rather than through a stream.
  if (reply.parts.length === 1 && only.fill && only.length !== undefined)
    ctx.body = await multipartBuffer(boundary, { ...only, length: only.length }, only.fill);
  else ctx.body = multipartStream(boundary, await openFirst(reply.parts));
}
