import type { RouterContext } from '@koa/router';
import { auditedRead } from '../audit.js';
import type { AppDeps } from '../deps.js';
import { findMetadata } from '../db/lookup.js';
import { ApiError } from '../errors.js';
import { dicomwebBase } from '../http/base-url.js';
import { parseAccept, typeMatches } from '../http/accept.js';
import { callerOf } from '../http/guard.js';
import { present } from '../present.js';
import { notFound, targetOf } from './target.js';

/**
 * WADO-RS metadata (PS3.18 §10.4.1.1.2) at study, series or instance level:
 * the DICOM JSON kept at ingest, read without opening a blob and sent through
 * the attributes seam (server/present.ts), which gives BulkDataURIs this
 * server's base.
 */
export function retrieveMetadata(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const accepts = parseAccept(ctx.get('accept'));
    if (!accepts.some((a) => typeMatches(a.type, 'application/dicom+json') || a.type === 'application/json')) {
      throw new ApiError(406, 'NotAcceptable', 'metadata is available as application/dicom+json only');
    }
    const t = targetOf(ctx);
    const caller = callerOf(ctx);
    const texts = await findMetadata(deps.db, caller, t, auditedRead(ctx));
    if (!texts.length) throw notFound(t);
    ctx.type = 'application/dicom+json';
    ctx.body = present(deps, caller, texts, { set: 'metadata', bulkDataBase: dicomwebBase(ctx, deps.config) });
  };
}
