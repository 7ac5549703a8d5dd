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
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
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

  private async *body(): AsyncGenerator<Buffer> {
    const keep = this.delim.length - 1;
    for (;;) {
      const idx = this.buf.indexOf(this.delim);
      if (idx >= 0) {
        const last = this.buf.subarray(0, idx);
        this.buf = this.buf.subarray(idx + this.delim.length);
        if (last.length) yield last;
        return;
      }
      if (this.buf.length > keep) {
        const out = this.buf.subarray(0, this.buf.length - keep);
        this.buf = this.buf.subarray(this.buf.length - keep);
        yield out;
      }
      if (!(await this.pull())) throw this.malformed('multipart body ends before the closing boundary');
    }
  }
}

export interface OutPart {
  contentType: string;
  headers?: Record<string, string>;
  /** The body's byte count, when known, for Content-Length. */
  length?: number;
  body: () => Promise<AsyncIterable<Buffer | Uint8Array>> | AsyncIterable<Buffer | Uint8Array>;
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

/** A multipart/related response body, written part by part from streams. */
export function multipartStream(boundary: string, parts: AsyncIterable<OutPart> | Iterable<OutPart>): Readable {
  async function* gen(): AsyncGenerator<Buffer | Uint8Array> {
    for await (const part of parts as AsyncIterable<OutPart>) {
      yield partHead(boundary, part);
      for await (const chunk of await part.body()) yield chunk;
      yield Buffer.from('\r\n');
    }
    yield Buffer.from(`--${boundary}--\r\n`);
  }
  return Readable.from(gen(), { objectMode: false, highWaterMark: 1024 * 1024 });
}
