import fs from 'node:fs';
import path from 'node:path';
import Router from '@koa/router';
import { withPseudonyms } from '../deid/pseudonyms.js';
import type { AppDeps } from '../deps.js';
import { guard } from '../http/guard.js';
import { PACKAGE_ROOT } from '../paths.js';
import { downloadSelection, downloadStudy } from './download.js';
import { deleteDestination, deleteExport, getDestinations, getExport, getExports, postDestination, postExport } from './jobs.js';

/**
 * The export routes, under the /api router (server/api/routes.ts): zip
 * downloads, destinations, and push jobs. Exporting needs the retrieve
 * action (what leaves is what the caller may see); managing destinations
 * is an administrator's (the action that manages users and tokens).
 */
export function exportRoutes(r: Router, deps: AppDeps): void {
  // A caller of a de-identified view names studies by the pseudonymous UIDs it was shown (server/deid/pseudonyms.ts).
  r.get('/export/studies/:studyUid.zip', withPseudonyms(deps, guard('retrieve', 'export')), downloadStudy(deps));
  r.post('/export/zip', guard('retrieve', 'export'), downloadSelection(deps));

  const administering = guard('user', 'export-manage');
  r.get('/export/destinations', guard('retrieve', 'export-manage'), getDestinations(deps));
  r.post('/export/destinations', administering, postDestination(deps));
  r.delete('/export/destinations/:id', administering, deleteDestination(deps));

  const exporting = guard('retrieve', 'export-manage');
  r.post('/exports', exporting, postExport(deps));
  r.get('/exports', exporting, getExports(deps));
  r.get('/exports/:id', exporting, getExport(deps));
  r.delete('/exports/:id', exporting, deleteExport(deps));
}

const PAGE = fs.readFileSync(path.join(PACKAGE_ROOT, 'server/export/page.html'), 'utf8');

/** GET /exports: the page that follows push jobs (it reads /api/exports with the caller's session). */
export function exportPageRouter(): Router {
  const r = new Router();
  r.get('/exports', (ctx) => {
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = 'html';
    ctx.body = PAGE;
  });
  return r;
}
