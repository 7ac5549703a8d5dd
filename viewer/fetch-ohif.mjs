#!/usr/bin/env node
// Fetches the prebuilt OHIF viewer that Cairn serves (npm postinstall, or
// `npm run fetch-viewer`). `npm install @ohif/app` cannot work here (its own
// dependencies name versions the registry does not have) and Cairn needs only
// the built files, so: `npm pack` the pinned tarball, check its sha512 against
// the integrity the registry publishes (and the one pinned here), unpack only
// package/dist/ into viewer/ohif/ (git-ignored), and write a marker so later
// installs skip all of this. The viewer is never copied into the repository.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

const PACKAGE = '@ohif/app';
const VERSION = '3.13.2';
// The registry's dist.integrity for this version, pinned when the version was chosen.
const INTEGRITY = 'sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKxFfpq+jd5xXZB9E8EA==';

// Bumped when the way the files are unpacked changes, so older installs are redone.
const LAYOUT = 2;

const here = path.dirname(fileURLToPath(import.meta.url));
const target = path.join(here, 'ohif');
const markerFile = path.join(target, '.cairn-ohif.json');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

class InstallError extends Error {}

function fail(message) {
  throw new InstallError(message);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, ...opts });
  if (r.error) fail(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} exited with ${r.status}: ${(r.stderr || r.stdout).trim().slice(-2000)}`);
  return r.stdout;
}

function installed() {
  try {
    const m = JSON.parse(fs.readFileSync(markerFile, 'utf8'));
    return m.version === VERSION && m.integrity === INTEGRITY && m.layout === LAYOUT && fs.existsSync(path.join(target, 'index.html'));
  } catch {
    return false;
  }
}

if (installed()) {
  console.log(`cairn: OHIF viewer ${VERSION} already in viewer/ohif/`);
  process.exit(0);
}

async function install() {
  const published = run(npm, ['view', `${PACKAGE}@${VERSION}`, 'dist.integrity']).trim();
  if (published !== INTEGRITY) fail(`the registry publishes integrity ${published || '(none)'}, expected the pinned ${INTEGRITY}`);

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-ohif-'));
  try {
    const packed = JSON.parse(run(npm, ['pack', `${PACKAGE}@${VERSION}`, '--json', '--pack-destination', work], { cwd: work }));
    const tarball = path.join(work, packed[0].filename);
    const [algo, expected] = INTEGRITY.split('-');
    const hash = createHash(algo);
    await pipeline(fs.createReadStream(tarball), hash);
    const actual = hash.digest('base64');
    if (actual !== expected) fail(`the tarball's ${algo} is ${actual}, expected ${expected}`);

    // Unpack next to the target and rename into place, so an interrupted
    // install never leaves a half-filled viewer/ohif/ that looks complete.
    const staging = fs.mkdtempSync(path.join(here, '.ohif-staging-'));
    try {
      // --touch: npm tarballs date every file 1985-10-26, and Cairn's validators
      // (Last-Modified, ETag) must change when the viewer does, even for a file
      // whose size stays the same, such as index.html naming new bundle hashes.
      run('tar', ['-xzf', tarball, '-C', staging, '--strip-components=2', '--no-same-owner', '--touch', 'package/dist/']);
      if (!fs.existsSync(path.join(staging, 'index.html'))) fail('the tarball has no package/dist/index.html');
      fs.writeFileSync(
        path.join(staging, '.cairn-ohif.json'),
        `${JSON.stringify({ package: PACKAGE, version: VERSION, integrity: INTEGRITY, layout: LAYOUT }, null, 2)}\n`,
      );
      fs.rmSync(target, { recursive: true, force: true });
      fs.renameSync(staging, target);
    } finally {
      fs.rmSync(staging, { recursive: true, force: true });
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const started = Date.now();
try {
  await install();
} catch (err) {
  console.error(`\ncairn: could not install the OHIF viewer (${PACKAGE}@${VERSION}): ${err instanceof InstallError ? err.message : (err?.stack ?? err)}`);
  console.error('cairn: the viewer at / and its tests need it; DICOMweb works without it.');
  console.error('cairn: retry with `npm run fetch-viewer` once the npm registry is reachable.\n');
  process.exit(1);
}
console.log(`cairn: OHIF viewer ${VERSION} verified and unpacked into viewer/ohif/ in ${((Date.now() - started) / 1000).toFixed(1)} s`);
