import { ApiError } from '../errors.js';
import { parseAccept, typeMatches } from '../http/accept.js';
import { parseWindow } from './attributes.js';
import { parseQuality, parseViewport, RENDERED_TYPES, type RenderedType } from './encode.js';
import { windowProblem } from './pipeline.js';
import type { RenderRequest } from './render.js';

type Query = Record<string, string | string[] | undefined>;

function one(query: Query, name: string): string | undefined {
  const v = query[name];
  if (Array.isArray(v)) throw new ApiError(400, 'InvalidQuery', `"${name}" may be given once`);
  return v;
}

/**
 * The rendered media type for an Accept header (PS3.18 §8.7.4; image/jpeg when
 * any is accepted), and whether a multipart payload was asked; 406 listing
 * what Cairn makes when none is acceptable.
 */
export function renderedTypeOf(accept: string | undefined, allowed: readonly RenderedType[] = RENDERED_TYPES): { type: RenderedType; multipart: boolean } {
  for (const a of parseAccept(accept)) {
    const type = allowed.find((t) => typeMatches(a.type, t));
    if (type) return { type, multipart: a.multipart && a.type !== '*/*' };
  }
  throw new ApiError(406, 'NotAcceptable', `rendered images are made as ${allowed.join(', ')}; none of them is acceptable`);
}

/**
 * The query parameters of a rendered resource (PS3.18 §8.3.5.1): window,
 * viewport and quality are applied; annotation is accepted and nothing is
 * drawn, since Cairn never burns text into an image.
 */
export function renderRequestOf(query: Query, accept: string | undefined, allowed?: readonly RenderedType[]): RenderRequest & { multipart: boolean } {
  // PS3.18 §8.3.3.1: the accept query parameter, for links that cannot set a header (an <img src>), stands for the Accept header.
  const { type, multipart } = renderedTypeOf(one(query, 'accept') ?? accept, allowed);
  const window = parseWindow(one(query, 'window'));
  const problem = window && windowProblem(window);
  if (problem) throw new ApiError(400, 'InvalidWindow', problem);
  one(query, 'annotation');
  return { type, multipart, window, viewport: parseViewport(one(query, 'viewport')), quality: parseQuality(one(query, 'quality')) };
}
