import Router, { type RouterMiddleware } from '@koa/router';
import type { AppDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import { isValidUid } from '../dicom/uid.js';
import { withPseudonyms } from '../deid/pseudonyms.js';
import { guard } from '../http/guard.js';
import { followChanges } from './changes.js';
import { remove } from './delete.js';
import { retrieveBulkData, retrieveFrames } from './frames.js';
import { retrieveMetadata } from './metadata.js';
import { rejectShortcut } from './reject.js';
import { retrieveRendered } from './rendered.js';
import { retrieveThumbnail } from './thumbnail.js';
import { renderSlots, type RenderSlots } from '../render/render.js';
import { searchInstances, searchSeries, searchStudies } from './qido.js';
import { store } from './stow.js';
import { retrieve } from './wado.js';

const STUDY = '/studies/:studyUid';
const SERIES = `${STUDY}/series/:seriesUid`;
const INSTANCE = `${SERIES}/instances/:sopInstanceUid`;

/** One render queue per app, whichever DICOMweb root (the archive's, a collection's) a render comes through. */
const SLOTS = new WeakMap<AppDeps, RenderSlots>();

export function slotsOf(deps: AppDeps): RenderSlots {
  let slots = SLOTS.get(deps);
  if (!slots) SLOTS.set(deps, (slots = renderSlots()));
  return slots;
}

/** Marks a handler that answers 501, so that the capabilities description (capabilities.ts) leaves its route out. */
export const NOT_BUILT = Symbol('cairn.notBuilt');

/**
 * The one route table (DESIGN.md house style 1), below /dicom-web; or, for a
 * collection's DICOMweb root (server/collections/), below another prefix
 * with a middleware that runs first on every route.
 */
export function dicomwebRouter(deps: AppDeps, mount?: { prefix: string; first: RouterMiddleware }): Router {
  const r = new Router({ prefix: mount?.prefix ?? '/dicom-web' });
  if (mount) r.use(mount.first);
  for (const name of ['studyUid', 'seriesUid', 'sopInstanceUid']) {
    r.param(name, (value, _ctx, next) => {
      if (!isValidUid(value)) throw new ApiError(400, 'InvalidUid', `${name} "${value}" is not a valid DICOM UID`);
      return next();
    });
  }
  // Every route starts with its guard (http/guard.ts): the action it needs,
  // and what its audit row is called.
  // STOW-RS takes derived objects from a reader too (server/archive.ts decides what it may store).
  const storing = guard('annotate', 'store');
  // A caller of a de-identified view sends and is shown pseudonymous UIDs (server/deid/pseudonyms.ts).
  const searching = withPseudonyms(deps, guard('search', 'search'));
  const retrieving = withPseudonyms(deps, guard('retrieve', 'retrieve'));

  // STOW-RS, PS3.18 §10.5
  r.post('/studies', storing, store(deps));
  r.post(STUDY, storing, store(deps));

  // QIDO-RS, PS3.18 §10.6
  r.get('/studies', searching, searchStudies(deps));
  r.get('/series', searching, searchSeries(deps));
  r.get('/instances', searching, searchInstances(deps));
  r.get(`${STUDY}/series`, searching, searchSeries(deps));
  r.get(`${STUDY}/instances`, searching, searchInstances(deps));
  r.get(`${SERIES}/instances`, searching, searchInstances(deps));

  // WADO-RS, PS3.18 §10.4
  r.get(STUDY, retrieving, retrieve(deps));
  r.get(SERIES, retrieving, retrieve(deps));
  r.get(INSTANCE, retrieving, retrieve(deps));
  r.get(`${STUDY}/metadata`, retrieving, retrieveMetadata(deps));
  r.get(`${SERIES}/metadata`, retrieving, retrieveMetadata(deps));
  r.get(`${INSTANCE}/metadata`, retrieving, retrieveMetadata(deps));
  r.get(`${INSTANCE}/frames/:frames`, retrieving, retrieveFrames(deps));
  r.get(`${INSTANCE}/bulkdata/:tag`, retrieving, retrieveBulkData(deps));
  // Rendered images and thumbnails take turns for the CPU (server/render/render.ts).
  const rendering = { ...deps, slots: slotsOf(deps) };
  for (const path of [`${STUDY}/rendered`, `${SERIES}/rendered`, `${INSTANCE}/rendered`, `${INSTANCE}/frames/:frames/rendered`])
    r.get(path, retrieving, retrieveRendered(rendering));
  for (const path of [`${STUDY}/thumbnail`, `${SERIES}/thumbnail`, `${INSTANCE}/thumbnail`, `${INSTANCE}/frames/:frames/thumbnail`])
    r.get(path, retrieving, retrieveThumbnail(rendering));

  // The change feed (not part of PS3.18): what changed since a sequence number
  r.get('/changes', searching, followChanges(deps));

  // Deletion (an archive management service beside PS3.18, as other archives offer)
  const deleting = guard('delete', 'delete');
  r.delete(STUDY, deleting, remove(deps));
  r.delete(SERIES, deleting, remove(deps));
  r.delete(INSTANCE, deleting, remove(deps));

  // The IHE IOCM reject shortcut (as other archives offer it): a rejection note Cairn writes and stores
  const rejecting = guard('store', 'store');
  for (const path of [STUDY, SERIES, INSTANCE]) r.post(`${path}/reject/:code`, rejecting, rejectShortcut(deps));
  return r;
}
