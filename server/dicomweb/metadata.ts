import type { RouterContext } from '@koa/router';
import type { AppDeps } from '../deps.js';
import { findMetadata } from '../db/lookup.js';
import { ApiError } from '../errors.js';
import { dicomwebBase } from '../http/base-url.js';
import { parseAccept, typeMatches } from '../http/accept.js';
import { callerOf } from '../http/guard.js';
import { notFound, targetOf } from './target.js';

/**
 * WADO-RS metadata (PS3.18 §10.4.1.1.2) at study, series or instance level:
 * the DICOM JSON kept at ingest, joined without parsing and without opening a
 * blob. BulkDataURIs are stored relative to the DICOMweb root and get this
 * server's base here; the key `"BulkDataURI":"` cannot occur inside a JSON
 * string value, whose quotes are always escaped.
 */
export function retrieveMetadata(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const accepts = parseAccept(ctx.get('accept'));
    if (!accepts.some((a) => typeMatches(a.type, 'application/dicom+json') || a.type === 'application/json')) {
      throw new ApiError(406, 'NotAcceptable', 'metadata is available as application/dicom+json only');
    }
    const t = targetOf(ctx);
    const texts = await findMetadata(deps.db, callerOf(ctx), t);
    if (!texts.length) throw notFound(t);
    const base = dicomwebBase(ctx, deps.config);
    ctx.type = 'application/dicom+json';
    ctx.body = `[${texts.join(',')}]`.replaceAll('"BulkDataURI":"', `"BulkDataURI":"${base}/`);
  };
}
