import type { Context } from 'koa';
import { ApiError } from '../errors.js';
import { parseMediaType } from './multipart.js';

/** A small request body (a form or a JSON document) as text, refused beyond `limit` bytes. */
async function readText(ctx: Context, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new ApiError(413, 'PayloadTooLarge', `the request body is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A JSON object body, or an HTML form (application/x-www-form-urlencoded) as an object of strings. */
export async function readFields(ctx: Context, limit = 64 * 1024): Promise<Record<string, unknown>> {
  const type = parseMediaType(ctx.get('content-type') || '').type;
  if (type === 'application/x-www-form-urlencoded') return Object.fromEntries(new URLSearchParams(await readText(ctx, limit)));
  if (type !== 'application/json') throw new ApiError(415, 'UnsupportedMediaType', 'the body must be application/json');
  let body: unknown;
  try {
    body = JSON.parse(await readText(ctx, limit));
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError(400, 'MalformedJson', `the body is not valid JSON: ${(err as Error).message}`);
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ApiError(400, 'MalformedJson', 'the body must be a JSON object');
  return body as Record<string, unknown>;
}
