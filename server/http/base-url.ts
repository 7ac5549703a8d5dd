import type { Context } from 'koa';
import type { Config } from '../config.js';

/** The DICOMweb root as clients reach it, for RetrieveURL and BulkDataURI. */
export function dicomwebBase(ctx: Context, config: Config): string {
  const origin = config.publicUrl ?? `${ctx.protocol}://${ctx.host}`;
  return `${origin}/dicom-web`;
}
