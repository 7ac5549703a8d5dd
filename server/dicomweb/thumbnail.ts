import type { RouterContext } from '@koa/router';
import type { AppDeps } from '../deps.js';
import { findRenderable, findThumbnailCandidates } from '../db/lookup.js';
import { imagesShown } from '../deid/bytes.js';
import { PixelError } from '../pixels/types.js';
import { callerOf } from '../http/guard.js';
import { sendReply } from '../http/reply.js';
import { renderImage, type RenderSlots } from '../render/render.js';
import { renderRequestOf } from '../render/request.js';
import { cachedThumbnail, cacheThumbnail, representatives, THUMBNAIL_SIZE, thumbnailKey } from '../render/thumbnails.js';
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
    const tries = representatives(candidates);
    if (!tries.length) throw new PixelError(422, 'NotAnImage', 'there is no instance with pixel data to make a thumbnail of');
    const viewport = req.viewport ?? { width: THUMBNAIL_SIZE, height: THUMBNAIL_SIZE };
    let image: Buffer | undefined;
    let refusal: PixelError | undefined;
    for (const chosen of tries) {
      const frame = frameList ? frameList[0] : chosen.frame;
      const key = thumbnailKey(chosen.instance.blobKey, frame, viewport, req.type);
      image = await cachedThumbnail(deps.blobs, key);
      if (image) break;
      const [row] = await findRenderable(deps.db, caller, chosen.instance);
      if (!row) continue;
      try {
        image = await renderImage(deps, row, [frame], { type: req.type, viewport });
      } catch (err) {
        // A frame Cairn cannot decode or render leaves the thumbnail to the next candidate.
        if (!(err instanceof PixelError) || (err.status !== 406 && err.status !== 422)) throw err;
        refusal ??= err;
        continue;
      }
      await cacheThumbnail(deps.blobs, key, image).catch((err) => deps.log.warn({ key, error: String(err) }, 'thumbnail could not be cached'));
      break;
    }
    if (!image) {
      if (!refusal) throw notFound(t);
      if (tries.length === 1) throw refusal;
      throw new PixelError(
        refusal.status,
        refusal.code,
        `none of the ${tries.length} images tried could be made into a thumbnail; the first: ${refusal.message}`,
        refusal.headers,
      );
    }
    const body = image;
    await sendReply(ctx, { multipart: false, part: { contentType: req.type, length: body.length, body: () => body } });
  };
}
