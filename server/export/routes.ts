import type Router from '@koa/router';
import { withPseudonyms } from '../deid/pseudonyms.js';
import type { AppDeps } from '../deps.js';
import { guard } from '../http/guard.js';
import { downloadSelection, downloadStudy } from './download.js';

/** The export routes, under the /api router (server/api/routes.ts): downloads of zips. */
export function exportRoutes(r: Router, deps: AppDeps): void {
  // A caller of a de-identified view names studies by the pseudonymous UIDs it was shown (server/deid/pseudonyms.ts).
  r.get('/export/studies/:studyUid.zip', withPseudonyms(deps, guard('retrieve', 'export')), downloadStudy(deps));
  r.post('/export/zip', guard('retrieve', 'export'), downloadSelection(deps));
}
