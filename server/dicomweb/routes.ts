import Router from '@koa/router';
import type { AppDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import { isValidUid } from '../dicom/uid.js';
import { remove } from './delete.js';
import { retrieveBulkData, retrieveFrames } from './frames.js';
import { retrieveMetadata } from './metadata.js';
import { searchInstances, searchSeries, searchStudies } from './qido.js';
import { store } from './stow.js';
import { retrieve } from './wado.js';

const STUDY = '/studies/:studyUid';
const SERIES = `${STUDY}/series/:seriesUid`;
const INSTANCE = `${SERIES}/instances/:sopInstanceUid`;

/** The one route table (DESIGN.md house style 1), below /dicom-web. */
export function dicomwebRouter(deps: AppDeps): Router {
  const r = new Router({ prefix: '/dicom-web' });
  for (const name of ['studyUid', 'seriesUid', 'sopInstanceUid']) {
    r.param(name, (value, ctx, next) => {
      if (!isValidUid(value)) throw new ApiError(400, 'InvalidUid', `${name} "${value}" is not a valid DICOM UID`);
      return next();
    });
  }
  const notBuilt = (what: string) => () => {
    throw new ApiError(501, 'NotImplemented', `${what} is not implemented by this server`);
  };

  // STOW-RS, PS3.18 §10.5
  r.post('/studies', store(deps));
  r.post(STUDY, store(deps));

  // QIDO-RS, PS3.18 §10.6
  r.get('/studies', searchStudies(deps));
  r.get('/series', searchSeries(deps));
  r.get('/instances', searchInstances(deps));
  r.get(`${STUDY}/series`, searchSeries(deps));
  r.get(`${STUDY}/instances`, searchInstances(deps));
  r.get(`${SERIES}/instances`, searchInstances(deps));

  // WADO-RS, PS3.18 §10.4
  r.get(STUDY, retrieve(deps));
  r.get(SERIES, retrieve(deps));
  r.get(INSTANCE, retrieve(deps));
  r.get(`${STUDY}/metadata`, retrieveMetadata(deps));
  r.get(`${SERIES}/metadata`, retrieveMetadata(deps));
  r.get(`${INSTANCE}/metadata`, retrieveMetadata(deps));
  r.get(`${INSTANCE}/frames/:frames`, retrieveFrames(deps));
  r.get(`${INSTANCE}/bulkdata/:tag`, retrieveBulkData(deps));
  for (const path of [`${STUDY}/rendered`, `${SERIES}/rendered`, `${INSTANCE}/rendered`, `${INSTANCE}/frames/:frames/rendered`]) r.get(path, notBuilt('rendered retrieval'));
  for (const path of [`${STUDY}/thumbnail`, `${SERIES}/thumbnail`, `${INSTANCE}/thumbnail`]) r.get(path, notBuilt('thumbnail retrieval'));

  // Deletion (an archive management service beside PS3.18, as other archives offer)
  r.delete(STUDY, remove(deps));
  r.delete(SERIES, remove(deps));
  r.delete(INSTANCE, remove(deps));
  return r;
}
