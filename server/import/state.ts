import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

// The resume state of an import: one line per file that is in the archive
// (stored now or found already there), appended as each completes, in a file
// of the data folder named after the folders being imported. A stopped or
// killed import run again over the same folders skips those files without
// opening them; a file changed since (size or modification time) is read
// again. A run that reaches the end removes the file.

export interface ImportState {
  /** Where the state is kept. */
  readonly file: string;
  /** How many files an earlier, unfinished run completed. */
  readonly carried: number;
  done(file: { path: string; size: number; mtimeMs: number }): boolean;
  /** Appends the files at once (one write a batch), so a kill right after loses none of them. */
  record(files: readonly { path: string; size: number; mtimeMs: number }[]): void;
  /** A stopped run keeps the file, for the next run to continue. */
  close(): Promise<void>;
  /** The import reached its end: the state is no longer needed. */
  finish(): Promise<void>;
}

/** The state file of an import of these folders (the same folders, in any order, share one). */
export function stateFileFor(dataDir: string, roots: readonly string[]): string {
  const key = createHash('sha256')
    .update(JSON.stringify([...roots.map((r) => path.resolve(r))].sort()))
    .digest('hex')
    .slice(0, 16);
  return path.join(dataDir, 'import', `${key}.state`);
}

const stamp = (f: { size: number; mtimeMs: number }) => `${f.size}:${Math.trunc(f.mtimeMs)}`;

export function openImportState(file: string): ImportState {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const completed = new Map<string, string>();
  if (fs.existsSync(file)) {
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      // A run killed mid-write leaves at most one torn last line.
      try {
        const r = JSON.parse(line) as { p: string; s: string };
        if (typeof r.p === 'string' && typeof r.s === 'string') completed.set(r.p, r.s);
      } catch {}
    }
  }
  const carried = completed.size;
  return {
    file,
    carried,
    done: (f) => completed.get(f.path) === stamp(f),
    record: (files) => {
      if (files.length) fs.appendFileSync(file, files.map((f) => `${JSON.stringify({ p: f.path, s: stamp(f) })}\n`).join(''));
    },
    close: async () => undefined,
    async finish() {
      fs.rmSync(file, { force: true });
    },
  };
}
