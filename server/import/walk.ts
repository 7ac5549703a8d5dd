import fs from 'node:fs/promises';
import path from 'node:path';
import { referencedFiles } from '../dicom/dicomdir.js';

// The files of an import, folder by folder in name order. Where a folder
// holds a DICOMDIR, the files it references come first (in its record
// order: patient, study, series), then the walk goes on as usual so that
// files beside the DICOMDIR that it does not list are not missed; a file
// is given once however it was reached.

export type Found =
  | { kind: 'file'; path: string; size: number; mtimeMs: number }
  /** A file named by a DICOMDIR that is not there, or a DICOMDIR that cannot be read: listed, never fatal. */
  | { kind: 'problem'; path: string; reason: string }
  /** A DICOMDIR itself: read for its references, not stored. */
  | { kind: 'dicomdir'; path: string; references: number };

/** PS3.10 §8.2: the DICOMDIR's File ID in the root of its file-set. */
const DICOMDIR = 'DICOMDIR';

export async function* walk(roots: readonly string[]): AsyncGenerator<Found> {
  const given = new Set<string>();
  const visitedDirs = new Set<string>();
  for (const root of roots) {
    const abs = path.resolve(root);
    const st = await fs.stat(abs);
    if (st.isFile()) {
      if (!given.has(abs)) {
        given.add(abs);
        yield { kind: 'file', path: abs, size: st.size, mtimeMs: st.mtimeMs };
      }
    } else {
      yield* walkDir(abs, given, visitedDirs);
    }
  }
}

async function* walkDir(dir: string, given: Set<string>, visitedDirs: Set<string>): AsyncGenerator<Found> {
  // A symbolic link back up the tree must not make the walk endless.
  let real: string;
  try {
    real = await fs.realpath(dir);
  } catch (err) {
    yield { kind: 'problem', path: dir, reason: `folder cannot be read: ${(err as Error).message}` };
    return;
  }
  if (visitedDirs.has(real)) return;
  visitedDirs.add(real);
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    yield { kind: 'problem', path: dir, reason: `folder cannot be read: ${(err as Error).message}` };
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const dicomdir = entries.find((e) => e.name.toUpperCase() === DICOMDIR && !e.isDirectory());
  if (dicomdir) yield* fromDicomdir(dir, path.join(dir, dicomdir.name), given);
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e === dicomdir || given.has(p)) continue;
    let st: import('node:fs').Stats;
    try {
      st = await fs.stat(p);
    } catch (err) {
      yield { kind: 'problem', path: p, reason: `cannot be read: ${(err as Error).message}` };
      continue;
    }
    if (st.isDirectory()) yield* walkDir(p, given, visitedDirs);
    else if (st.isFile()) {
      given.add(p);
      yield { kind: 'file', path: p, size: st.size, mtimeMs: st.mtimeMs };
    }
  }
}

async function* fromDicomdir(dir: string, file: string, given: Set<string>): AsyncGenerator<Found> {
  let ids: string[][];
  try {
    ids = referencedFiles(await fs.readFile(file));
  } catch (err) {
    // The walk still finds the files themselves.
    yield { kind: 'problem', path: file, reason: `DICOMDIR cannot be read, its folder is walked instead: ${(err as Error).message}` };
    return;
  }
  yield { kind: 'dicomdir', path: file, references: ids.length };
  const listings = new Map<string, Promise<string[]>>();
  for (const id of ids) {
    const named = path.join(dir, ...id);
    // PS3.10 §8.5: File ID components are uppercase letters, digits and "_";
    // anything reaching outside the file-set's folder is refused.
    if (id.some((c) => c === '.' || c === '..' || c.includes('/')) || !named.startsWith(dir + path.sep)) {
      yield { kind: 'problem', path: named, reason: `DICOMDIR names a file outside its folder: ${id.join('\\')}` };
      continue;
    }
    const found = await resolveCase(dir, id, listings);
    if (!found) {
      yield { kind: 'problem', path: named, reason: 'named by the DICOMDIR but not found' };
      continue;
    }
    if (given.has(found.path)) continue;
    given.add(found.path);
    yield { kind: 'file', path: found.path, size: found.size, mtimeMs: found.mtimeMs };
  }
}

/**
 * The file a Referenced File ID names. File IDs are uppercase (PS3.10
 * §8.5), but media copied onto a case-sensitive file system often come out
 * in lowercase: each component is matched exactly first, then ignoring case.
 */
async function resolveCase(
  dir: string,
  id: string[],
  listings: Map<string, Promise<string[]>>,
): Promise<{ path: string; size: number; mtimeMs: number } | undefined> {
  const exact = path.join(dir, ...id);
  const st = await fs.stat(exact).catch(() => undefined);
  if (st?.isFile()) return { path: exact, size: st.size, mtimeMs: st.mtimeMs };
  let at = dir;
  for (const component of id) {
    let listing = listings.get(at);
    if (!listing) {
      listing = fs.readdir(at).catch(() => [] as string[]);
      listings.set(at, listing);
    }
    const names = await listing;
    const match = names.find((n) => n === component) ?? names.find((n) => n.toUpperCase() === component.toUpperCase());
    if (!match) return undefined;
    at = path.join(at, match);
  }
  const found = await fs.stat(at).catch(() => undefined);
  return found?.isFile() ? { path: at, size: found.size, mtimeMs: found.mtimeMs } : undefined;
}
