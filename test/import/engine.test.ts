import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../server/access.js';
import type { BlobStore } from '../../server/blob/blob-store.js';
import { runImport } from '../../server/import/import.js';
import { openImportState, stateFileFor } from '../../server/import/state.js';
import { createTestArchive, type TestArchive } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';

// The import engine in-process, over the test's real database and blob
// store, to see what the command line cannot: which blob writes it makes.
const IMPORTER: Principal = { sub: 'cairn-import', roles: ['uploader'], clearances: [] };
let a: TestArchive;
let work: string;

beforeAll(async () => {
  a = await createTestArchive();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-import-engine-'));
});
afterAll(async () => {
  await a?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

/** The test's blob store, counting writes. */
function counting(blobs: BlobStore): { blobs: BlobStore; puts: () => number } {
  let n = 0;
  const wrapped = Object.create(blobs) as BlobStore;
  wrapped.put = (key, body) => {
    n++;
    return blobs.put(key, body);
  };
  return { blobs: wrapped, puts: () => n };
}

function importOnce(roots: string[], blobs: BlobStore, principal = IMPORTER) {
  const ctx = { db: a.deps.db, blobs, config: a.deps.config, log: () => undefined };
  return runImport({
    archive: ctx,
    audit: { db: a.deps.db },
    principal,
    roots,
    workers: 3,
    state: openImportState(stateFileFor(a.deps.config.dataDir, roots)),
    signal: new AbortController().signal,
  });
}

describe('runImport', () => {
  it('finds files already stored from their header and checksum, with no blob write', async () => {
    const dir = path.join(work, 'twice');
    fs.mkdirSync(dir);
    for (let i = 0; i < 5; i++) fs.writeFileSync(path.join(dir, `f${i}.dcm`), syntheticInstance().bytes);
    const first = counting(a.deps.blobs);
    expect(await importOnce([dir], first.blobs)).toMatchObject({ stored: 5, present: 0, failed: 0 });
    expect(first.puts()).toBe(5);
    const second = counting(a.deps.blobs);
    expect(await importOnce([dir], second.blobs)).toMatchObject({ stored: 0, present: 5, resumed: 0, failed: 0 });
    expect(second.puts()).toBe(0);
  });

  it('leaves a file with the UID of a stored instance but other bytes to the store path, which refuses it', async () => {
    const dir = path.join(work, 'changed');
    fs.mkdirSync(dir);
    const inst = syntheticInstance();
    fs.writeFileSync(path.join(dir, 'a.dcm'), inst.bytes);
    await importOnce([dir], a.deps.blobs);
    const other = syntheticInstance({ sopInstanceUid: inst.sopInstanceUid, studyUid: inst.studyUid, seriesUid: inst.seriesUid, PatientID: 'OTHER' });
    fs.writeFileSync(path.join(dir, 'a.dcm'), other.bytes);
    const r = await importOnce([dir], a.deps.blobs);
    expect(r).toMatchObject({ stored: 0, present: 0, failed: 1 });
    expect(r.failures[0].reason).toMatch(/already stored with different content \(0x0111\)/);
  });

  it('refuses a principal without the store role, even for files already stored', async () => {
    const dir = path.join(work, 'denied');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'a.dcm'), syntheticInstance().bytes);
    await importOnce([dir], a.deps.blobs);
    const audited = await a.deps.db('audit_events').count<{ n: string }[]>('* as n');
    await expect(importOnce([dir], a.deps.blobs, { sub: 'reader', roles: ['clinician'], clearances: [] })).rejects.toThrow(/may not store/);
    expect(await a.deps.db('audit_events').count<{ n: string }[]>('* as n')).toEqual(audited);
  });
});
