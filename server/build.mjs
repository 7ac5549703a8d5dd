// Transpiles the server to plain JavaScript in dist/ (one file per source
// file, same layout), which `npm start` and the container run. Running the
// TypeScript through tsx instead keeps a module-loader thread and its caches
// alive for the life of the process: about 55 MB more RSS per replica. This
// only transpiles (esbuild, about half a second); `npm test` and
// `npm run typecheck` do the type checking. Every server file is an entry,
// so the pixel pool's worker (server/pixels/worker.ts) becomes
// dist/server/pixels/worker.js beside the module that starts it.
import { build, stop } from 'esbuild';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DIST_MAIN = path.join(ROOT, 'dist/server/main.js');

/** Builds into `outdir` (relative to the project root; tests build into a folder of their own under dist/). */
export async function buildServer(outdir = 'dist') {
  await build({
    absWorkingDir: ROOT,
    entryPoints: ['server/**/*.ts', 'migrations/**/*.ts', 'viewer/*.ts'],
    outdir,
    outbase: '.',
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // For stack traces with NODE_OPTIONS=--enable-source-maps; Node reads them only then.
    sourcemap: true,
    logLevel: 'warning',
  });
  // esbuild keeps a service process for further builds; there are none.
  await stop();
}

// `node server/build.mjs` builds; `node server/build.mjs --start` (npm start)
// builds and then runs the server in this same process, so signals sent to
// npm start reach the server itself.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildServer();
  if (process.argv.includes('--start')) await import(pathToFileURL(DIST_MAIN).href);
}
