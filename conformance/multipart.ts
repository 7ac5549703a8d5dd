// Tiny multipart/related (RFC 2387) builder and parser for the conformance suite.
// Self-contained on purpose: the suite must not import anything from server/.

export interface Part {
  headers: Record<string, string>; // lower-cased header names
  body: Uint8Array;
}

const enc = new TextEncoder();

export function randomBoundary(): string {
  return 'cnf-' + Math.random().toString(36).slice(2) + Date.now().toString(36);
}

/** Build a multipart body; each part gets its Content-Type header. */
export function buildMultipart(
  parts: { body: Uint8Array; contentType: string }[],
  boundary: string = randomBoundary(),
): { body: Uint8Array; boundary: string } {
  const chunks: Uint8Array[] = [];
  for (const p of parts) {
    chunks.push(enc.encode(`--${boundary}\r\nContent-Type: ${p.contentType}\r\n\r\n`));
    chunks.push(p.body);
    chunks.push(enc.encode('\r\n'));
  }
  chunks.push(enc.encode(`--${boundary}--\r\n`));
  return { body: concat(chunks), boundary };
}

export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** Split a media type into lower-cased type and parameters (quotes removed). */
export function parseMediaType(value: string | null | undefined): { type: string; params: Record<string, string> } {
  const params: Record<string, string> = {};
  if (!value) return { type: '', params };
  const re = /;\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/g;
  const semi = value.indexOf(';');
  const type = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  let m: RegExpExecArray | null;
  const rest = semi < 0 ? '' : value.slice(semi);
  while ((m = re.exec(rest))) {
    let v = m[2]!.trim();
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    params[m[1]!.toLowerCase()] = v;
  }
  return { type, params };
}

function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0];
  outer: for (let i = hay.indexOf(first!, from); i >= 0 && i <= hay.length - needle.length; i = hay.indexOf(first!, i + 1)) {
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Parse a multipart/related body given the response Content-Type header. Throws on malformed input. */
export function parseMultipart(body: Uint8Array, contentType: string | null): Part[] {
  const { type, params } = parseMediaType(contentType);
  if (!type.startsWith('multipart/')) throw new Error(`not multipart: ${contentType}`);
  const boundary = params['boundary'];
  if (!boundary) throw new Error(`no boundary in ${contentType}`);
  const delim = enc.encode(`--${boundary}`);
  const parts: Part[] = [];
  let pos = indexOf(body, delim, 0);
  if (pos < 0) throw new Error('opening boundary not found');
  for (;;) {
    pos += delim.length;
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) break; // closing "--"
    // skip transport padding up to CRLF
    while (pos < body.length && body[pos] !== 0x0a) pos++;
    pos++;
    const headerEnd = indexOf(body, enc.encode('\r\n\r\n'), pos);
    const blank = body[pos] === 0x0d && body[pos + 1] === 0x0a; // part with no headers
    const hdrStop = blank ? pos : headerEnd;
    if (hdrStop < 0) throw new Error('part headers not terminated');
    const headers: Record<string, string> = {};
    for (const line of new TextDecoder().decode(body.subarray(pos, hdrStop)).split('\r\n')) {
      const c = line.indexOf(':');
      if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
    }
    const start = blank ? pos + 2 : headerEnd + 4;
    const next = indexOf(body, enc.encode(`\r\n--${boundary}`), start);
    if (next < 0) throw new Error('closing boundary not found');
    parts.push({ headers, body: body.slice(start, next) });
    pos = next + 2;
  }
  return parts;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
