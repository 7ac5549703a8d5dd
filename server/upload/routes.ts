import fs from 'node:fs';
import Router from '@koa/router';
import multer from '@koa/multer';
import type { AppDeps } from '../deps.js';
import { principalOf } from '../dicomweb/target.js';
import { ApiError } from '../errors.js';
import { storeEngine, type UploadResult } from './store-engine.js';

const PAGE = fs.readFileSync(new URL('./page.html', import.meta.url), 'utf8');

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
  r.post('/upload', async (ctx) => {
    if (!ctx.is('multipart/form-data')) throw new ApiError(415, 'UnsupportedMediaType', 'upload files as multipart/form-data in the field "file"');
    const upload = multer({
      storage: storeEngine(store, principalOf(ctx)),
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
    const results = ((ctx as unknown as { files?: { result: UploadResult }[] }).files ?? []).map((f) => f.result);
    if (!results.length) throw new ApiError(400, 'NoFiles', 'the form holds no files in the field "file"');
    for (const f of results) {
      if (f.status === 'rejected') deps.log.warn({ code: f.code, reason: f.reason }, 'upload rejected');
      else deps.log.info({ studyUid: f.studyUid, duplicate: f.status === 'duplicate' }, 'uploaded');
    }
    ctx.body = { files: results };
  });
  return r;
}
