import type { RouterContext } from '@koa/router';
import type { AppDeps } from '../deps.js';
import { findRenderable, type RenderableInstance } from '../db/lookup.js';
import { imagesShown } from '../deid/bytes.js';
import { PixelError } from '../pixels/types.js';
import { callerOf } from '../http/guard.js';
import type { OutPart } from '../http/multipart.js';
import { sendReply } from '../http/reply.js';
import { renderImage, type RenderSlots, type RenderRequest } from '../render/render.js';
import { renderRequestOf } from '../render/request.js';
import { parseFrameList } from './frames.js';
import { notFound, targetOf } from './target.js';

type Deps = Pick<AppDeps, 'db' | 'blobs' | 'pixels'> & Partial<Pick<AppDeps, 'research'>>;

/** The frames one instance is rendered from: the first, or with image/gif every frame (PS3.18 §8.7.4). */
function framesOf(row: RenderableInstance, req: RenderRequest): number[] {
  const count = row.frames?.length ?? 1;
  return req.type === 'image/gif' && count > 1 ? Array.from({ length: count }, (_, i) => i + 1) : [1];
}

function imagePart(deps: Deps, row: RenderableInstance, frames: number[], req: RenderRequest): OutPart {
  return { contentType: req.type, body: () => renderImage(deps, row, frames, req) };
}

/**
 * Rendered resources (PS3.18 §10.4.1.1.3): a study or series as a multipart
 * payload of one image per instance that has pixel data; an instance as one
 * image; frames as one image each, or one animated GIF.
 */
export function retrieveRendered(deps: Deps & { slots?: RenderSlots }) {
  return async (ctx: RouterContext): Promise<void> => {
    const t = targetOf(ctx);
    const frameList = ctx.params.frames === undefined ? undefined : parseFrameList(ctx.params.frames);
    const req = renderRequestOf(ctx.query, ctx.get('accept') || undefined);
    const caller = callerOf(ctx);
    let rows = await findRenderable(deps.db, caller, t);
    if (!rows.length) throw notFound(t);
    // A de-identified view never shows the pixels of an instance it withholds (burned-in text, PS3.15 E.1.1).
    const view = deps.research?.viewOf(caller);
    if (view) {
      const { shown, refused } = imagesShown(view, rows);
      if (!shown.length && refused) throw refused;
      rows = shown;
    }
    if (!t.sopInstanceUid) {
      const parts = rows.filter((r) => r.frames).map((r) => imagePart(deps, r, framesOf(r, req), req));
      if (!parts.length) throw new PixelError(422, 'NotAnImage', `${t.seriesUid ? 'series' : 'study'} has no instance with pixel data to render`);
      return sendReply(ctx, { multipart: true, partType: req.type, parts });
    }
    const [row] = rows;
    const groups = !frameList ? [framesOf(row, req)] : req.type === 'image/gif' ? [frameList] : frameList.map((n) => [n]);
    if (groups.length === 1 && !req.multipart) {
      const image = await renderImage(deps, row, groups[0], req);
      return sendReply(ctx, { multipart: false, part: { contentType: req.type, length: image.length, body: () => image } });
    }
    return sendReply(ctx, { multipart: true, partType: req.type, parts: groups.map((g) => imagePart(deps, row, g, req)) });
  };
}
