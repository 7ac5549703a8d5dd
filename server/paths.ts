import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The folder of Cairn's package.json. Files beside the code (the upload page,
 * the fetched viewer) are found from here, so the same code finds them when
 * it runs as TypeScript from server/ and as JavaScript from dist/server/.
 */
export const PACKAGE_ROOT = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('Cairn cannot find its package.json above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
})();
