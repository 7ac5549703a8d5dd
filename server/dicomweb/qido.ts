import type { RouterContext } from '@koa/router';
import type { AppDeps } from '../deps.js';
import { ApiError } from '../errors.js';

// QIDO-RS (PS3.18 §10.6): being built.
function notBuilt(_deps: AppDeps) {
  return async (_ctx: RouterContext): Promise<void> => {
    throw new ApiError(501, 'NotImplemented', 'search is not implemented yet');
  };
}
export const searchStudies = notBuilt;
export const searchSeries = notBuilt;
export const searchInstances = notBuilt;
