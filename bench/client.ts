// Minimal keep-alive HTTP client plus bounded request loops used by every phase.
import http from 'node:http';
import { randomBytes } from 'node:crypto';

export const DICOM_MULTIPART = 'multipart/related; type="application/dicom"';
export const FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';

const agent = new http.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 64 });

export interface Reply {
  status: number;
  bytes: number;
  ms: number;
  body?: Buffer;
  type?: string;
}

/** Refuses anything that is not a loopback target. */
export function assertLoopback(url: string): URL {
  const u = new URL(url);
  if (u.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) {
    throw new Error(`only http://127.0.0.1 targets are allowed, got ${url}`);
  }
  return u;
}

/** Headers sent with every request (the Authorization of the identity the bench runs as). */
const defaults: Record<string, string> = {};
export function setDefaultHeaders(h: Record<string, string>): void {
  Object.assign(defaults, h);
}
export function defaultHeaders(): Record<string, string> {
  return { ...defaults };
}

/** One request; the body is always read to the end. `keep` retains it (for JSON replies). */
export function request(
  method: string,
  url: string,
  headers: Record<string, string | number>,
  body?: Uint8Array[],
  keep = false,
  timeoutMs = 120_000,
): Promise<Reply> {
  const u = assertLoopback(url);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        method,
        host: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port || 80,
        path: u.pathname + u.search,
        headers: { ...defaults, ...headers },
      },
      (res) => {
        let bytes = 0;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (keep) chunks.push(c);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            bytes,
            ms: performance.now() - t0,
            body: keep ? Buffer.concat(chunks) : undefined,
            type: String(res.headers['content-type'] ?? ''),
          }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout ${method} ${url}`)));
    req.on('error', reject);
    if (body) for (const b of body) req.write(b);
    req.end();
  });
}

export function getJson(url: string): Promise<Reply & { json: unknown }> {
  return request('GET', url, { Accept: 'application/dicom+json' }, undefined, true).then((r) => {
    let json: unknown = null;
    if (r.status === 200 && r.body && r.body.length) {
      try {
        json = JSON.parse(r.body.toString('utf8'));
      } catch {
        json = null;
      }
    }
    return { ...r, json };
  });
}

/** Builds a multipart/related body (as a list of chunks) around Part-10 files. */
export function multipart(files: Uint8Array[]): { chunks: Uint8Array[]; length: number; contentType: string } {
  const boundary = 'cairnbench' + randomBytes(12).toString('hex');
  const chunks: Uint8Array[] = [];
  const head = Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`);
  const sep = Buffer.from('\r\n');
  for (const f of files) chunks.push(head, f, sep);
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  const length = chunks.reduce((n, c) => n + c.byteLength, 0);
  return { chunks, length, contentType: `${DICOM_MULTIPART}; boundary=${boundary}` };
}

export function stow(base: string, files: Uint8Array[]): Promise<Reply> {
  const mp = multipart(files);
  return request(
    'POST',
    `${base}/studies`,
    {
      'Content-Type': mp.contentType,
      'Content-Length': mp.length,
      Accept: 'application/dicom+json',
    },
    mp.chunks,
    true,
  );
}

export interface LoopResult {
  count: number;
  errors: number;
  bytes: number;
  elapsedMs: number;
  latencies: number[];
  firstError?: string;
}

/**
 * Runs `task(i)` with `concurrency` workers until `maxCount` tasks were started or `maxMs`
 * elapsed (running tasks are awaited). A task resolves to the reply it measured, or
 * `null` when the work source is exhausted.
 */
export async function loop(
  concurrency: number,
  maxCount: number,
  maxMs: number,
  task: (i: number) => Promise<Reply | null>,
  okStatus = (s: number) => s >= 200 && s < 300,
): Promise<LoopResult> {
  const res: LoopResult = { count: 0, errors: 0, bytes: 0, elapsedMs: 0, latencies: [] };
  const t0 = performance.now();
  let next = 0;
  let done = false;
  const worker = async (): Promise<void> => {
    while (!done && next < maxCount && performance.now() - t0 < maxMs) {
      const i = next++;
      let r: Reply | null;
      try {
        r = await task(i);
      } catch (e) {
        res.errors++;
        res.firstError ??= String((e as Error).message ?? e);
        continue;
      }
      if (r === null) {
        done = true;
        break;
      }
      res.count++;
      res.bytes += r.bytes;
      res.latencies.push(r.ms);
      if (!okStatus(r.status)) {
        res.errors++;
        res.firstError ??= `HTTP ${r.status} ${r.body ? r.body.toString('utf8').slice(0, 200) : ''}`;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  res.elapsedMs = performance.now() - t0;
  return res;
}

/** Latency loop: a few warm-up requests, then sequential measured requests. */
export async function latency(n: number, maxMs: number, task: (i: number) => Promise<Reply>, warmup = 3): Promise<LoopResult> {
  for (let i = 0; i < warmup; i++) {
    try {
      await task(i);
    } catch {
      /* measured below */
    }
  }
  return loop(1, n, maxMs, task);
}

export function closeAgent(): void {
  agent.destroy();
}
