import { Readable } from 'node:stream';
import { ApiError } from '../errors.js';

// Streaming multipart (RFC 2046 §5.1, as used by PS3.18 §8.6.1.2): parts are
// handed out one at a time and their bodies are streams, so memory stays
// bounded whatever the size of the request or of one part.

export interface MediaType {
  type: string;
  params: Record<string, string>;
}

/** Parses `type/subtype; a=b; c="d"` (RFC 9110 §8.3.1), lower-casing names. */
export function parseMediaType(value: string): MediaType {
  const [head, ...rest] = splitOutsideQuotes(value, ';');
  const params: Record<string, string> = {};
  for (const p of rest) {
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    const name = p.slice(0, eq).trim().toLowerCase();
    let v = p.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    params[name] = v;
  }
  return { type: head.trim().toLowerCase(), params };
}

export function splitOutsideQuotes(value: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of value) {
    if (ch === '"') quoted = !quoted;
    if (ch === sep && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

export interface Part {
  headers: Record<string, string>;
  body: AsyncIterable<Buffer>;
}

const MAX_HEADER_BYTES = 16 * 1024;

export class MultipartReader {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  private readonly delim: Buffer;
  private readonly it: AsyncIterator<Buffer>;
  private started = false;
  private finished = false;
  private current: AsyncGenerator<Buffer> | null = null;

  constructor(source: AsyncIterable<Buffer>, boundary: string) {
    this.delim = Buffer.from(`\r\n--${boundary}`);
    this.it = source[Symbol.asyncIterator]();
  }

  private async pull(): Promise<boolean> {
    const chunk = await this.nextChunk();
    if (!chunk) return false;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    return true;
  }

  private malformed(msg: string): ApiError {
    return new ApiError(400, 'MalformedMultipart', msg);
  }

  /** The next part, or null after the closing delimiter. */
  async next(): Promise<Part | null> {
    if (this.current) {
      // Drain what the caller left of the previous part.
      for await (const _ of this.current);
      this.current = null;
    }
    if (this.finished) return null;
    if (!this.started) {
      this.started = true;
      // The first delimiter may open the body without a leading CRLF.
      this.buf = Buffer.concat([Buffer.from('\r\n'), this.buf]);
      for (;;) {
        const idx = this.buf.indexOf(this.delim);
        if (idx >= 0) {
          this.buf = this.buf.subarray(idx + this.delim.length);
          break;
        }
        if (this.buf.length > this.delim.length) this.buf = this.buf.subarray(this.buf.length - this.delim.length);
        if (!(await this.pull())) throw this.malformed('multipart body has no opening boundary');
      }
    }
    // After a delimiter: "--" closes the body; otherwise optional LWSP, CRLF, headers.
    while (this.buf.length < 2) if (!(await this.pull())) throw this.malformed('multipart body ends inside a boundary line');
    if (this.buf[0] === 0x2d && this.buf[1] === 0x2d) {
      this.finished = true;
      return null;
    }
    let headerEnd: number;
    for (;;) {
      headerEnd = this.buf.indexOf('\r\n\r\n');
      if (headerEnd >= 0) break;
      if (this.buf.length > MAX_HEADER_BYTES) throw this.malformed('multipart part headers are too long');
      if (!(await this.pull())) throw this.malformed('multipart body ends inside part headers');
    }
    const lines = this.buf.subarray(0, headerEnd).toString('latin1').split('\r\n');
    // lines[0] is the remainder of the boundary line (transport padding).
    if (lines[0].trim() !== '') throw this.malformed('unexpected characters after a multipart boundary');
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const c = line.indexOf(':');
      if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
    }
    this.buf = this.buf.subarray(headerEnd + 4);
    this.current = this.body();
    return { headers, body: this.current };
  }

  /**
   * Reads the rest of the body without splitting it into parts, for a caller
   * that will look at no more of them: what is left costs a read of its
   * bytes, nothing per part.
   */
  async discardRest(): Promise<void> {
    if (this.current) {
      for await (const _ of this.current);
      this.current = null;
    }
    this.buf = Buffer.alloc(0);
    while (await this.nextChunk());
    this.finished = true;
  }

  private async *body(): AsyncGenerator<Buffer> {
    const dl = this.delim.length;
    for (;;) {
      const idx = this.buf.indexOf(this.delim);
      if (idx >= 0) {
        const last = this.buf.subarray(0, idx);
        this.buf = this.buf.subarray(idx + dl);
        if (last.length) yield last;
        return;
      }
      // Everything but a possible start of the delimiter can go out now.
      if (this.buf.length >= dl) {
        yield this.buf.subarray(0, this.buf.length - (dl - 1));
        this.buf = this.buf.subarray(this.buf.length - (dl - 1));
      }
      const chunk = await this.nextChunk();
      if (!chunk) throw this.malformed('multipart body ends before the closing boundary');
      if (chunk.length < dl - 1) {
        // Too short to close a straddling delimiter: keep gathering.
        this.buf = Buffer.concat([this.buf, chunk]);
        continue;
      }
      // A delimiter may straddle the kept tail and the new chunk; only that
      // small window is copied, never the chunk itself.
      const j = Buffer.concat([this.buf, chunk.subarray(0, dl - 1)]).indexOf(this.delim);
      if (j >= 0 && j < this.buf.length) {
        if (j) yield this.buf.subarray(0, j);
        this.buf = chunk.subarray(j + dl - this.buf.length);
        return;
      }
      if (this.buf.length) yield this.buf;
      this.buf = chunk;
    }
  }

  private async nextChunk(): Promise<Buffer | null> {
    if (this.done) return null;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return null;
    }
    return Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
  }
}

type Chunks = AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>;
/** A part's bytes: one buffer, or chunks from a stream. */
export type PartBody = Buffer | Chunks;

export interface OutPart {
  contentType: string;
  headers?: Record<string, string>;
  /** The body's byte count, when known, for Content-Length. */
  length?: number;
  body: () => Promise<PartBody> | PartBody;
  /**
   * Writes the body's `length` bytes into `into`: offered by a part small
   * enough to be read whole, so that a payload of that one part can be
   * built in one buffer (multipartBuffer).
   */
  fill?: (into: Buffer) => Promise<unknown>;
}

function partHead(boundary: string, part: OutPart): Buffer {
  let head = `--${boundary}\r\nContent-Type: ${part.contentType}\r\n`;
  for (const [k, v] of Object.entries(part.headers ?? {})) head += `${k}: ${v}\r\n`;
  return Buffer.from(`${head}\r\n`);
}

/** The exact byte count of multipartStream() over these parts, or undefined if a part's length is unknown. */
export function multipartLength(boundary: string, parts: OutPart[]): number | undefined {
  let n = Buffer.byteLength(`--${boundary}--\r\n`);
  for (const p of parts) {
    if (p.length === undefined) return undefined;
    n += partHead(boundary, p).length + p.length + 2;
  }
  return n;
}

/**
 * A multipart/related response body, written part by part from streams. The
 * next part's body is opened while the current one is sent, so the wait for
 * a blob overlaps with writing the previous one.
 */
export function multipartStream(boundary: string, parts: OutPart[]): Readable {
  async function* gen(): AsyncGenerator<Buffer | Uint8Array> {
    let next = parts.length ? Promise.resolve(parts[0].body()) : null;
    let body: PartBody | undefined;
    try {
      for (let i = 0; i < parts.length; i++) {
        body = await next!;
        next = i + 1 < parts.length ? Promise.resolve(parts[i + 1].body()) : null;
        // A prefetched body that is never reached must not become an unhandled rejection.
        next?.catch(() => undefined);
        yield partHead(boundary, parts[i]);
        if (Buffer.isBuffer(body)) yield body;
        else for await (const chunk of body) yield chunk;
        body = undefined;
        yield CRLF;
      }
      yield Buffer.from(`--${boundary}--\r\n`);
    } finally {
      // A response cut short (the client went away) closes the blobs it had
      // opened: an S3 read left open would hold a pooled connection.
      if (body) discard(body);
      void next?.then(discard, () => undefined);
    }
  }
  return Readable.from(gen(), { objectMode: false, highWaterMark: 1024 * 1024 });
}

const CRLF = Buffer.from('\r\n');

function discard(body: PartBody): void {
  const destroy = (body as { destroy?: () => void }).destroy;
  if (typeof destroy === 'function') destroy.call(body);
}

/**
 * A multipart/related body of one part of known length as one buffer, the
 * part's bytes written by `fill` straight into their place (no second copy
 * of an instance on the way out).
 */
export async function multipartBuffer(boundary: string, part: OutPart & { length: number }, fill: (into: Buffer) => Promise<unknown>): Promise<Buffer> {
  const head = partHead(boundary, part);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const out = Buffer.allocUnsafe(head.length + part.length + tail.length);
  head.copy(out, 0);
  await fill(out.subarray(head.length, head.length + part.length));
  tail.copy(out, head.length + part.length);
  return out;
}

/**
 * The same parts with the first one's body already opened: a blob that
 * cannot be read (a blob store that is down) then fails the request with its
 * own status (503) before any byte of a 200 is sent.
 */
export async function openFirst(parts: OutPart[]): Promise<OutPart[]> {
  if (!parts.length) return parts;
  const first = await parts[0].body();
  return [{ ...parts[0], body: () => first }, ...parts.slice(1)];
}
