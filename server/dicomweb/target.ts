import type { RouterContext } from '@koa/router';
import type { Target } from '../db/lookup.js';
import { ApiError } from '../errors.js';

/** The study / series / instance a WADO or DELETE route names. */
export function targetOf(ctx: RouterContext): Target {
  return { studyUid: ctx.params.studyUid, seriesUid: ctx.params.seriesUid, sopInstanceUid: ctx.params.sopInstanceUid };
}

/** The one not-found answer: the same for a UID that does not exist and one the caller may not see. */
export function notFound(t: Target): ApiError {
  if (t.sopInstanceUid) return new ApiError(404, 'InstanceNotFound', `instance ${t.sopInstanceUid} was not found`);
  if (t.seriesUid) return new ApiError(404, 'SeriesNotFound', `series ${t.seriesUid} was not found`);
  return new ApiError(404, 'StudyNotFound', `study ${t.studyUid} was not found`);
}
