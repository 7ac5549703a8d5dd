import type { Context } from 'koa';
import type { Config } from '../config.js';

/** The DICOMweb root as clients reach it, for RetrieveURL and BulkDataURI: a collection's own below its root (server/collections/). */
export function dicomwebBase(ctx: Context, config: Config): string {
  const origin = config.publicUrl ?? `${ctx.protocol}://${ctx.host}`;
  const collection = ctx.state.collection;
  return collection ? `${origin}/collections/${collection.id}/dicom-web` : `${origin}/dicom-web`;
}
