import fs from 'node:fs';
import path from 'node:path';
import Router from '@koa/router';
import multer from '@koa/multer';
import type { AppDeps } from '../deps.js';
import { recordOutcomes, type StoreOutcome } from '../archive.js';
import { ApiError } from '../errors.js';
import { PACKAGE_ROOT } from '../paths.js';
import { callerOf, guard } from '../http/guard.js';
import { resultOf, storeEngine } from './store-engine.js';

const PAGE = fs.readFileSync(path.join(PACKAGE_ROOT, 'server/upload/page.html'), 'utf8');

/**
 * The upload page: GET /upload is the page, POST /upload takes a
 * multipart/form-data of files (field "file") and answers one result per file.
 */
export function uploadRouter(deps: AppDeps): Router {
  const r = new Router();
  const store = { ...deps, log: (entry: Record<string, unknown>) => deps.log.warn(entry) };
  r.get('/upload', (ctx) => {
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = 'html';
    ctx.body = PAGE;
  });
  // The same guard as STOW-RS: the store role, a session's CSRF token, the audit trail.
  r.post('/upload', guard('store', 'store'), async (ctx) => {
    if (!ctx.is('multipart/form-data')) throw new ApiError(415, 'UnsupportedMediaType', 'upload files as multipart/form-data in the field "file"');
    const upload = multer({
      storage: storeEngine(store, callerOf(ctx)),
      // Browsers send UTF-8 names; a folder upload names each file by its path in the folder.
      defParamCharset: 'utf8',
      preservePath: true,
      limits: { fields: 20, fieldSize: 4096 },
    });
    try {
      await upload.array('file')(ctx, async () => undefined);
    } catch (err) {
      const e = err as { name?: string; code?: string; message?: string };
      if (e.name === 'MulterError' || /^(Unexpected end of form|Malformed part header|Multipart: Boundary not found)/.test(e.message ?? '')) {
        throw new ApiError(400, 'MalformedUpload', `the upload could not be read: ${e.code ?? e.message}`);
      }
      throw err;
    }
    const files = (ctx as unknown as { files?: { originalname: string; outcome: StoreOutcome }[] }).files ?? [];
    if (!files.length) throw new ApiError(400, 'NoFiles', 'the form holds no files in the field "file"');
    recordOutcomes(
      files.map((f) => f.outcome),
      deps.log,
    );
    ctx.body = { files: files.map((f) => resultOf(f.originalname, f.outcome)) };
  });
  return r;
}
