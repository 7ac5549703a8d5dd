import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { Context, Middleware } from 'koa';
import compress from 'koa-compress';
import type { Config } from '../server/config.js';
import type { AppDeps } from '../server/deps.js';
import { ApiError } from '../server/errors.js';
import { ohifAppConfigScript } from './app-config.js';

// Paths other routers answer: never the viewer's, never its index page.
const NOT_OURS = ['/dicom-web', '/api', '/auth', '/login', '/upload', '/healthz', '/readyz'];

// A collection's viewer and its configuration: /collections/{id}/…
const COLLECTION_PAGE = /^\/collections\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(\/.*)?$/;

// A content hash in the file name (`app.bundle.0f6159c501addfe9.js`,
// `0ddf166f7a343eda.wasm`): such a file never changes under its name.
const HASHED = /(^|[.-])[0-9a-f]{16,}\.[a-z0-9]+$/;

const COMPRESSIBLE = /^(text\/|application\/(javascript|json|manifest\+json|xml|wasm)\b|image\/(svg\+xml|x-icon|vnd\.microsoft\.icon)\b)/;

/**
 * The OHIF viewer at the site root (its build expects PUBLIC_URL "/"), on the
 * same origin as /dicom-web so no CORS is needed: the generated
 * /app-config.js, the files of the prebuilt dist, and its index page for
 * every other path (OHIF routes in the browser: /viewer, /segmentation, …).
 */
export function viewerRouter(deps: AppDeps): Middleware {
  const root = deps.config.viewerDir;
  const gzip = compress({
    // Text, scripts, JSON, SVG, and wasm (binary, but it compresses well).
    filter: (type) => COMPRESSIBLE.test(type),
    threshold: 1024,
    br: { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } },
    zstd: false,
    deflate: false,
  });
  // A plain middleware rather than a router: a catch-all route would make
  // every other method on every path look like "405, GET only".
  return async (ctx, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    if (NOT_OURS.some((p) => ctx.path === p || ctx.path.startsWith(`${p}/`))) return next();
    if (ctx.path === '/app-config.js') return gzip(ctx, async () => serveAppConfig(ctx, deps.config));
    const collection = COLLECTION_PAGE.exec(ctx.path);
    if (collection) {
      const [, id, rest] = collection;
      // A collection's DICOMweb root (server/collections/) is never the viewer's, even at a path it does not serve.
      if (rest === '/dicom-web' || rest?.startsWith('/dicom-web/')) return next();
      if (rest === '/app-config.js') return gzip(ctx, async () => serveAppConfig(ctx, deps.config, id));
      return gzip(ctx, () => serveCollectionIndex(ctx, root, id));
    }
    return gzip(ctx, () => serveFile(ctx, root));
  };
}

function serveAppConfig(ctx: Context, config: Config, collection?: string): void {
  isolate(ctx);
  ctx.set('Cache-Control', 'no-cache');
  ctx.type = 'application/javascript';
  ctx.body = ohifAppConfigScript(config.publicUrl ?? `${ctx.protocol}://${ctx.host}`, collection);
}

/**
 * A collection's viewer: OHIF's index page, whose configuration script is
 * the collection's (/collections/{id}/app-config.js) instead of the
 * archive's, so the same build opens the collection's DICOMweb root with its
 * routes below /collections/{id}/. The page names nothing of the collection;
 * what it may read is decided by the collection's DICOMweb root.
 */
async function serveCollectionIndex(ctx: Context, root: string, id: string): Promise<void> {
  const file = await fileInside(root, '/index.html');
  if (!file) throw new ApiError(503, 'ViewerNotInstalled', 'the OHIF viewer is not installed on this server (run `npm run fetch-viewer`)');
  isolate(ctx);
  ctx.set('Cache-Control', 'no-cache');
  ctx.type = 'html';
  const html = await fs.promises.readFile(file.path, 'utf8');
  ctx.body = html.replaceAll('src="/app-config.js"', `src="/collections/${id}/app-config.js"`);
}

async function serveFile(ctx: Context, root: string): Promise<void> {
  const file = (await fileInside(root, ctx.path)) ?? (await fileInside(root, '/index.html'));
  if (!file) throw new ApiError(503, 'ViewerNotInstalled', 'the OHIF viewer is not installed on this server (run `npm run fetch-viewer`)');
  isolate(ctx);
  const name = path.basename(file.path);
  ctx.set('Cache-Control', HASHED.test(name) ? 'public, max-age=31536000, immutable' : 'no-cache');
  ctx.status = 200;
  ctx.lastModified = file.stat.mtime;
  ctx.etag = `W/"${file.stat.size.toString(16)}-${file.stat.mtimeMs.toString(16)}"`;
  ctx.type = path.extname(name);
  if (ctx.fresh) {
    ctx.status = 304;
    return;
  }
  // For HEAD koa sends the headers only and destroys the unread stream.
  ctx.body = fs.createReadStream(file.path);
  ctx.length = file.stat.size;
}

/**
 * The regular file `urlPath` names below `root`, or undefined. A path with a
 * `..` segment (raw or percent-encoded), a NUL or a hidden name is refused
 * outright, and what remains must still resolve, symlinks followed, inside
 * the root: nothing outside the dist folder is ever read.
 */
async function fileInside(root: string, urlPath: string): Promise<{ path: string; stat: fs.Stats } | undefined> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    throw new ApiError(400, 'InvalidPath', 'the path is not valid percent-encoding');
  }
  const segments = decoded.split(/[/\\]/);
  if (decoded.includes('\0') || segments.includes('..')) throw new ApiError(400, 'InvalidPath', 'the path may not contain ".." segments');
  if (segments.some((s) => s.startsWith('.'))) return undefined;
  try {
    const realRoot = await fs.promises.realpath(root);
    const real = await fs.promises.realpath(path.join(realRoot, ...segments));
    if (!real.startsWith(realRoot + path.sep)) return undefined;
    const stat = await fs.promises.stat(real);
    return stat.isFile() ? { path: real, stat } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Cross-origin isolation (COOP + COEP), which browsers require before they
 * give OHIF SharedArrayBuffer for its volume (MPR, 3D) loader. Everything the
 * viewer loads is from this origin, so require-corp costs nothing; CORP marks
 * each file as this origin's own.
 */
function isolate(ctx: Context): void {
  ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
  ctx.set('Cross-Origin-Embedder-Policy', 'require-corp');
  ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
}
