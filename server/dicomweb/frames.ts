import type { RouterContext } from '@koa/router';
import type { AppDeps } from '../deps.js';
import type { BlobStore } from '../blob/blob-store.js';
import { readRanges } from '../blob/spans.js';
import { findFramedInstance } from '../db/lookup.js';
import type { Span } from '../db/rows.js';
import { ApiError } from '../errors.js';
import { choosePixelMedia, parseAccept } from '../http/accept.js';
import { openFirst, respondMultipart, type OutPart } from '../http/multipart.js';
import { callerOf } from '../http/guard.js';
import { notFound, targetOf } from './target.js';

/** PS3.18 §8.3.3 frame-list: comma-separated frame numbers, starting at 1. */
function parseFrameList(value: string): number[] {
  const items = value.split(',');
  if (!items.every((s) => /^[1-9][0-9]*$/.test(s.trim()))) {
    throw new ApiError(400, 'InvalidFrameList', `frame list "${value}" must be comma-separated frame numbers starting at 1`);
  }
  return items.map((s) => Number(s.trim()));
}

function spansBody(blobs: BlobStore, key: string, spans: Span[]) {
  const ranges = spans.filter((s) => s.length).map((s) => ({ start: s.offset, end: s.offset + s.length - 1 }));
  return () => readRanges(blobs, key, ranges);
}

/** WADO-RS frames (PS3.18 §10.4.1.1.3): each frame read by range from the blob, sent as stored. */
export function retrieveFrames(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const t = targetOf(ctx);
    const numbers = parseFrameList(ctx.params.frames);
    const row = await findFramedInstance(deps.db, callerOf(ctx), t as Required<typeof t>);
    if (!row) throw notFound(t);
    if (!row.frames) throw new ApiError(404, 'NoFrames', `instance ${t.sopInstanceUid} has no pixel data frames that can be located`);
    const missing = numbers.find((n) => n > row.frames!.length);
    if (missing) throw new ApiError(404, 'FrameNotFound', `frame ${missing} does not exist; the instance has ${row.frames.length}`);
    const media = choosePixelMedia(parseAccept(ctx.get('accept')), row.transfer_syntax_uid);
    if (!media) throw new ApiError(406, 'NotAcceptable', `frames are stored as ${row.transfer_syntax_uid}; Cairn does not transcode (accept its media type, or application/octet-stream with transfer-syntax=*)`);
    const parts: OutPart[] = numbers.map((n) => {
      const spans = row.frames![n - 1];
      return { contentType: media.contentType, length: spans.reduce((a, s) => a + s.length, 0), body: spansBody(deps.blobs, row.blob_key, spans) };
    });
    if (!media.multipart && parts.length === 1) {
      ctx.type = media.contentType;
      ctx.length = parts[0].length!;
      // The range is opened here, so a blob store that is down answers 503 before any byte.
      ctx.body = await parts[0].body();
      return;
    }
    respondMultipart(ctx, media.contentType.split(';')[0], await openFirst(parts));
  };
}

/** RFC 9110 §14.1.2: a single `bytes=a-b`, `a-` or `-n` range. */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) throw new ApiError(416, 'RangeNotSatisfiable', `unsupported Range "${header}"; one bytes range is supported`, { 'Content-Range': `bytes */${size}` });
  let start: number;
  let end: number;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) throw new ApiError(416, 'RangeNotSatisfiable', `Range "${header}" is outside the ${size} bytes of the value`, { 'Content-Range': `bytes */${size}` });
  return { start, end };
}

/**
 * WADO-RS bulk data (PS3.18 §10.4.1.1.5) for the BulkDataURIs in metadata:
 * the value bytes of a top-level bulk element as stored, with HTTP Range.
 * Encapsulated pixel data is sent as its frames (§8.7.3.5: compressed bulk
 * data carries no fragment delimiters).
 */
export function retrieveBulkData(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const t = targetOf(ctx);
    const tag = String(ctx.params.tag).toUpperCase();
    if (!/^[0-9A-F]{8}$/.test(tag)) throw new ApiError(400, 'InvalidTag', `"${ctx.params.tag}" is not an 8-digit hexadecimal tag`);
    const row = await findFramedInstance(deps.db, callerOf(ctx), t as Required<typeof t>);
    if (!row) throw notFound(t);
    const el = row.bulk[tag];
    if (!el) throw new ApiError(404, 'BulkDataNotFound', `instance ${t.sopInstanceUid} has no bulk data element ${tag}`);
    const accepts = parseAccept(ctx.get('accept'));
    const encapsulated = tag === '7FE00010' && row.frames && !['1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.2'].includes(row.transfer_syntax_uid);
    if (encapsulated) {
      const media = choosePixelMedia(accepts, row.transfer_syntax_uid);
      if (!media) throw new ApiError(406, 'NotAcceptable', `pixel data is stored as ${row.transfer_syntax_uid}; Cairn does not transcode`);
      const parts: OutPart[] = row.frames!.map((spans) => ({ contentType: media.contentType, length: spans.reduce((a, s) => a + s.length, 0), body: spansBody(deps.blobs, row.blob_key, spans) }));
      respondMultipart(ctx, media.contentType.split(';')[0], await openFirst(parts));
      return;
    }
    const wantsMultipart = !accepts.some((a) => !a.multipart && (a.type === 'application/octet-stream' || a.type === '*/*')) && accepts.some((a) => a.multipart);
    const range = parseRange(ctx.get('range') || undefined, el.length);
    ctx.set('Accept-Ranges', 'bytes');
    if (range || !wantsMultipart) {
      const r = range ?? { start: 0, end: el.length - 1 };
      if (range) {
        ctx.status = 206;
        ctx.set('Content-Range', `bytes ${r.start}-${r.end}/${el.length}`);
      }
      ctx.type = 'application/octet-stream';
      ctx.length = r.end - r.start + 1;
      ctx.body = el.length ? await deps.blobs.get(row.blob_key, { start: el.offset + r.start, end: el.offset + r.end }) : '';
      return;
    }
    respondMultipart(ctx, 'application/octet-stream', await openFirst([{ contentType: 'application/octet-stream', length: el.length, body: spansBody(deps.blobs, row.blob_key, [el]) }]));
  };
}
