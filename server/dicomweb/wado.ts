import { randomUUID } from 'node:crypto';
import type { RouterContext } from '@koa/router';
import type { AppDeps } from '../deps.js';
import { findInstances } from '../db/lookup.js';
import { ApiError } from '../errors.js';
import { acceptsDicom, parseAccept } from '../http/accept.js';
import { multipartBuffer, multipartLength, multipartStream, openFirst, type OutPart } from '../http/multipart.js';
import { callerOf } from '../http/guard.js';
import { notFound, targetOf } from './target.js';

/**
 * WADO-RS retrieve of a study, series or instance (PS3.18 §10.4.1.1.1):
 * multipart/related; type="application/dicom", each part the stored bytes.
 */
export function retrieve(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const t = targetOf(ctx);
    const accepts = parseAccept(ctx.get('accept'));
    const rows = await findInstances(deps.db, callerOf(ctx), t);
    if (!rows.length) throw notFound(t);
    const chosen = rows.map((r) => acceptsDicom(accepts, r.transfer_syntax_uid));
    const refused = rows.findIndex((_, i) => !chosen[i]);
    if (refused >= 0) {
      throw new ApiError(406, 'NotAcceptable', `no acceptable media type for instance ${rows[refused].sop_instance_uid} stored as ${rows[refused].transfer_syntax_uid}; Cairn sends application/dicom in the stored transfer syntax (ask with transfer-syntax=* or that UID)`);
    }
    // Small instances are read whole (one read, one socket write); large ones stream.
    const load = (r: (typeof rows)[number]) => (r.size <= SMALL_BLOB ? deps.blobs.read(r.blob_key, r.size) : deps.blobs.get(r.blob_key));
    const parts: OutPart[] = rows.map((r) => ({
      contentType: `application/dicom; transfer-syntax=${r.transfer_syntax_uid}`,
      length: r.size,
      body: async () => {
        const body = await load(r);
        return Buffer.isBuffer(body) ? [body] : body;
      },
    }));
    // A bare application/dicom is answered with one single-part instance.
    if (t.sopInstanceUid && chosen[0] && !chosen[0].multipart) {
      ctx.type = parts[0].contentType;
      ctx.length = rows[0].size;
      ctx.body = await load(rows[0]);
      return;
    }
    const boundary = randomUUID();
    ctx.type = `multipart/related; type="application/dicom"; boundary=${boundary}`;
    ctx.length = multipartLength(boundary, parts)!;
    // One small instance goes out as one buffer rather than through a stream.
    if (rows.length === 1 && rows[0].size <= SMALL_BLOB) {
      ctx.body = await multipartBuffer(boundary, { ...parts[0], length: rows[0].size }, (into) => deps.blobs.read(rows[0].blob_key, rows[0].size, into));
    } else ctx.body = multipartStream(boundary, await openFirst(parts));
  };
}

/** Instances up to this size are sent from one buffer instead of a stream. */
const SMALL_BLOB = 4 * 1024 * 1024;
