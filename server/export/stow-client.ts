import { randomUUID } from 'node:crypto';
import { multipartStream, type OutPart } from '../http/multipart.js';

// A STOW-RS client (PS3.18 §10.5) for pushing to another archive: one
// request per batch, its parts streamed as they are read, and the answer
// read per instance from the Store Instances Response Module (PS3.18
// §10.5.3, Table 10.5.3-1).

/** What the destination said about one instance, by the SOP Instance UID it was sent under. */
export type StowOutcome = { stored: true } | { stored: false; reason: string };

/** A batch's answer: per instance; or the whole batch refused (`retry` when trying again later may help). */
export type StowResult = { kind: 'answered'; outcomes: Map<string, StowOutcome> } | { kind: 'refused'; reason: string; retry: boolean };

/** The most bytes of a STOW response read. */
const MAX_RESPONSE = 16 * 1024 * 1024;

export async function stow(url: string, token: string | null, parts: OutPart[], sent: string[], timeoutMs: number): Promise<StowResult> {
  const boundary = `cairn-${randomUUID()}`;
  const headers: Record<string, string> = {
    'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
    Accept: 'application/dicom+json',
  };
  if (token) headers.Authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(`${url.replace(/\/+$/, '')}/studies`, {
      method: 'POST',
      headers,
      body: multipartStream(boundary, parts) as unknown as BodyInit,
      // Node's fetch sends a streamed body only half-duplex.
      duplex: 'half',
      signal: AbortSignal.timeout(timeoutMs),
    } as RequestInit);
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { kind: 'refused', reason: `the destination could not be reached: ${cause?.code ?? cause?.message ?? (err as Error).message}`, retry: true };
  }
  const text = await readLimited(res);
  // 5xx, 408 and 429 are the destination's trouble, not the instances': the batch goes again later.
  if (res.status >= 500 || res.status === 408 || res.status === 429)
    return { kind: 'refused', reason: `the destination answered HTTP ${res.status}`, retry: true };
  if (res.status === 401 || res.status === 403)
    return { kind: 'refused', reason: `the destination refused the credentials (HTTP ${res.status}); check the destination's token`, retry: false };
  const outcomes = new Map<string, StowOutcome>();
  let body: Record<string, { Value?: Record<string, { Value?: unknown[] }>[] }> | undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  // PS3.18 §10.5.3: Referenced SOP Sequence (0008,1199) lists what was stored, Failed SOP Sequence (0008,1198) what was not, with its Failure Reason (0008,1197).
  for (const item of body?.['00081199']?.Value ?? []) {
    const uid = item['00081155']?.Value?.[0];
    if (typeof uid === 'string') outcomes.set(uid, { stored: true });
  }
  for (const item of body?.['00081198']?.Value ?? []) {
    const uid = item['00081155']?.Value?.[0];
    const code = item['00081197']?.Value?.[0];
    if (typeof uid === 'string')
      outcomes.set(uid, {
        stored: false,
        reason: `the destination refused it: failure reason ${typeof code === 'number' ? `0x${code.toString(16).toUpperCase()}` : 'not given'}`,
      });
  }
  for (const uid of sent) {
    if (outcomes.has(uid)) continue;
    // A 200 without a usable body says every instance was stored (§10.5.3.1); otherwise an unlisted instance was not.
    outcomes.set(
      uid,
      res.status === 200 && !body ? { stored: true } : { stored: false, reason: `the destination answered HTTP ${res.status} without storing it` },
    );
  }
  return { kind: 'answered', outcomes };
}

async function readLimited(res: Response): Promise<string> {
  if (!res.body) return '';
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
    n += c.length;
    if (n > MAX_RESPONSE) break;
    chunks.push(Buffer.from(c));
  }
  return Buffer.concat(chunks).toString('utf8');
}
