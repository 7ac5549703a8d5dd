// Shared helpers for the conformance checks: HTTP, assertions, DICOM JSON access.
import type { Instance, SampleName, Synthetic } from './fixtures.js';
import { buildMultipart, parseMediaType, parseMultipart, type Part } from './multipart.js';

export interface Ctx {
  base: string; // without trailing slash
  samples: Record<SampleName, Instance>;
  syn: Synthetic;
  deleteSupported: boolean;
  notes: string[]; // informational observations (e.g. 204 vs 200 [] for empty QIDO results)
  headers: Record<string, string>; // sent with every request (such as Authorization)
  bulkUri?: string; // BulkDataURI found by the metadata check, reused by the Range check
  wadoUri?: string; // the WADO-URI address (PS3.18 §9), when the suite was given one
}

export interface Check {
  name: string;
  // biome-ignore lint/suspicious/noConfusingVoidType: a check that passes returns nothing; one that fails returns why
  run: (ctx: Ctx) => Promise<string | void>;
}

export interface Res {
  status: number;
  headers: Headers;
  bytes: Uint8Array;
  contentType: string;
  text(): string;
  json(): any;
}

export const ACCEPT_DICOM = 'multipart/related; type="application/dicom"';
export const ACCEPT_OCTET = 'multipart/related; type="application/octet-stream"';
export const DICOM_JSON = 'application/dicom+json';
/** Per-request limit, below the per-check limit in suite.ts so a hung request fails its check cleanly. */
export const REQUEST_TIMEOUT_MS = 20_000;

export async function req(ctx: Ctx, method: string, path: string, init: { headers?: Record<string, string>; body?: Uint8Array } = {}): Promise<Res> {
  const url = /^https?:/.test(path) ? path : ctx.base + path;
  // copy into a fresh ArrayBuffer-backed view (a BodyInit under strict lib typings)
  const body = init.body ? new Uint8Array(init.body) : undefined;
  const r = await fetch(url, { method, headers: { ...ctx.headers, ...init.headers }, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const bytes = new Uint8Array(await r.arrayBuffer());
  return {
    status: r.status,
    headers: r.headers,
    bytes,
    contentType: r.headers.get('content-type') ?? '',
    text: () => new TextDecoder().decode(bytes),
    json: () => JSON.parse(new TextDecoder().decode(bytes)),
  };
}

export const get = (ctx: Ctx, path: string, accept: string, extra: Record<string, string> = {}) =>
  req(ctx, 'GET', path, { headers: { Accept: accept, ...extra } });

export class CheckError extends Error {}

export function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new CheckError(msg);
}

export function expectStatus(r: Res, ...codes: number[]): void {
  if (!codes.includes(r.status)) {
    throw new CheckError(`HTTP ${r.status} (expected ${codes.join(' or ')}): ${r.text().slice(0, 160).replace(/\s+/g, ' ')}`);
  }
}

export function expectType(r: Res, type: string): void {
  const t = parseMediaType(r.contentType).type;
  assert(t === type, `Content-Type is "${r.contentType}", expected ${type}`);
}

/** Parse a multipart/related response and check its parts' media type (`type` parameter or part header). */
export function multipartOf(r: Res, partType?: string): Part[] {
  const mt = parseMediaType(r.contentType);
  assert(mt.type === 'multipart/related', `Content-Type is "${r.contentType}", expected multipart/related`);
  const parts = parseMultipart(r.bytes, r.contentType);
  if (partType) {
    for (const p of parts) {
      const t = parseMediaType(p.headers['content-type'] ?? mt.params['type']).type;
      assert(t === partType, `part Content-Type "${p.headers['content-type']}", expected ${partType}`);
    }
  }
  return parts;
}

/** JSON result array of a QIDO/metadata response (200 + array, or 204 = empty). */
export function jsonArray(r: Res): any[] {
  if (r.status === 204) return [];
  expectStatus(r, 200);
  expectType(r, DICOM_JSON);
  const j = r.json();
  assert(Array.isArray(j), 'response body is not a JSON array');
  return j;
}

export function values(item: any, tag: string): any[] {
  const v = item?.[tag]?.Value;
  return Array.isArray(v) ? v : [];
}

export function first(item: any, tag: string): any {
  return values(item, tag)[0];
}

export function pnAlpha(item: any, tag = '00100010'): string {
  const v = first(item, tag);
  return typeof v === 'object' && v ? String(v.Alphabetic ?? '') : String(v ?? '');
}

export function uidsOf(items: any[], tag: string): string[] {
  return items.map((i) => String(first(i, tag))).sort();
}

export function sameSet(actual: string[], expected: string[], what: string): void {
  const a = [...actual].sort().join(','),
    e = [...expected].sort().join(',');
  assert(a === e, `${what}: got [${a}] expected [${e}]`);
}

export const dicomPart = (i: Instance) => ({ body: i.bytes, contentType: 'application/dicom' });

/** POST a STOW-RS request; `quoted` controls whether the boundary parameter is quoted. */
export async function stow(ctx: Ctx, path: string, parts: { body: Uint8Array; contentType: string }[], quoted = true): Promise<Res> {
  const { body, boundary } = buildMultipart(parts);
  const b = quoted ? `"${boundary}"` : boundary;
  return req(ctx, 'POST', path, {
    headers: { 'Content-Type': `multipart/related; type="application/dicom"; boundary=${b}`, Accept: DICOM_JSON },
    body,
  });
}

/** STOW response body: ReferencedSOPSequence / FailedSOPSequence items keyed by SOP Instance UID. */
export function stowResult(r: Res): { json: any; ok: Map<string, any>; failed: any[] } {
  expectType(r, DICOM_JSON);
  let json = r.json();
  if (Array.isArray(json)) json = json[0]; // tolerate an array-wrapped dataset
  assert(json && typeof json === 'object', 'STOW response is not a DICOM JSON object');
  const ok = new Map<string, any>();
  for (const it of values(json, '00081199')) ok.set(String(first(it, '00081155')), it);
  return { json, ok, failed: values(json, '00081198') };
}

export function wadoPath(i: Instance): string {
  return `/studies/${i.study}/series/${i.series}/instances/${i.sop}`;
}
