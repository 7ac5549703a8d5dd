import type { RouterContext } from '@koa/router';
import type { AppDeps } from '../deps.js';
import { findRenderable, findThumbnailCandidates } from '../db/lookup.js';
import { imagesShown } from '../deid/bytes.js';
import { PixelError } from '../pixels/types.js';
import { callerOf } from '../http/guard.js';
import { sendReply } from '../http/reply.js';
import { renderImage, type RenderSlots } from '../render/render.js';
import { renderRequestOf } from '../render/request.js';
import { cachedThumbnail, cacheThumbnail, representative, THUMBNAIL_SIZE, thumbnailKey } from '../render/thumbnails.js';
import { parseFrameList } from './frames.js';
import { notFound, targetOf } from './target.js';

type Deps = Pick<AppDeps, 'db' | 'blobs' | 'pixels' | 'log'> & Partial<Pick<AppDeps, 'research'>>;

/**
 * Thumbnails (PS3.18 §10.4.1.1.4): one image of a representative frame, with
 * no text, sized to the viewport or to fit 128 pixels. The first request
 * keeps the image in the blob store; later ones are an index read and a
 * blob read.
 */
export function retrieveThumbnail(deps: Deps & { slots?: RenderSlots }) {
  return async (ctx: RouterContext): Promise<void> => {
    const t = targetOf(ctx);
    const frameList = ctx.params.frames === undefined ? undefined : parseFrameList(ctx.params.frames);
    const req = renderRequestOf(ctx.query, ctx.get('accept') || undefined, ['image/jpeg', 'image/png']);
    const caller = callerOf(ctx);
    let candidates = await findThumbnailCandidates(deps.db, caller, t);
    if (!candidates.length) throw notFound(t);
    // A de-identified view makes thumbnails only of instances it does not withhold (burned-in text, PS3.15 E.1.1).
    const view = deps.research?.viewOf(caller);
    if (view) {
      const { shown, refused } = imagesShown(view, await findRenderable(deps.db, caller, t));
      const allowed = new Set(shown.map((r) => r.sopInstanceUid));
      candidates = candidates.filter((c) => allowed.has(c.sopInstanceUid));
      if (!candidates.length && refused) throw refused;
    }
    const chosen = representative(candidates);
    if (!chosen) throw new PixelError(422, 'NotAnImage', 'there is no instance with pixel data to make a thumbnail of');
    const frame = frameList ? frameList[0] : chosen.frame;
    const viewport = req.viewport ?? { width: THUMBNAIL_SIZE, height: THUMBNAIL_SIZE };
    const key = thumbnailKey(chosen.instance.blobKey, frame, viewport, req.type);
    let image = await cachedThumbnail(deps.blobs, key);
    if (!image) {
      const [row] = await findRenderable(deps.db, caller, chosen.instance);
      if (!row) throw notFound(t);
      image = await renderImage(deps, row, [frame], { type: req.type, viewport });
      await cacheThumbnail(deps.blobs, key, image).catch((err) => deps.log.warn({ key, error: String(err) }, 'thumbnail could not be cached'));
    }
    const body = image;
    await sendReply(ctx, { multipart: false, part: { contentType: req.type, length: body.length, body: () => body } });
  };
}
