import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import dcmjs from 'dcmjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MEDIA_STORAGE_DIRECTORY, readFileMeta, referencedFiles } from '../../server/dicom/dicomdir.js';
import { type Found, walk } from '../../server/import/walk.js';

// The import's walk: DICOMDIR references first, then every other file of
// the folders, each once; and the two readers it rests on.
const samples = '/work/shared/dicom-samples';
let work: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-walk-'));
});
afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

function disc(name: string): string {
  const dir = path.join(work, name);
  for (const [i, s] of ['CT_small.dcm', 'MR_small.dcm', 'chrGerm.dcm'].entries()) {
    fs.mkdirSync(path.join(dir, 'DATA'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'DATA', `IM${i + 1}`), fs.readFileSync(path.join(samples, s)));
  }
  const mk = spawnSync('dcmmkdir', ['--recurse', '--invent', 'DATA'], { cwd: dir, encoding: 'utf8' });
  expect(fs.existsSync(path.join(dir, 'DICOMDIR')), `${mk.stdout}${mk.stderr}`).toBe(true);
  return dir;
}

async function all(roots: string[]): Promise<Found[]> {
  const out: Found[] = [];
  for await (const f of walk(roots)) out.push(f);
  return out;
}

/** A DICOMDIR written with dcmjs, naming the given Referenced File IDs. */
function dicomdirNaming(ids: string[][]): Buffer {
  const { DicomDict } = dcmjs.data;
  const dict = new DicomDict({
    '00020001': { vr: 'OB', Value: [new Uint8Array([0, 1]).buffer] },
    '00020002': { vr: 'UI', Value: [MEDIA_STORAGE_DIRECTORY] },
    '00020003': { vr: 'UI', Value: ['2.25.1'] },
    '00020010': { vr: 'UI', Value: ['1.2.840.10008.1.2.1'] },
  });
  dict.dict = {
    '00041220': {
      vr: 'SQ',
      Value: ids.map((id) => ({ '00041430': { vr: 'CS', Value: ['IMAGE'] }, '00041500': { vr: 'CS', Value: id } })),
    },
  };
  return Buffer.from(dict.write());
}

describe('readFileMeta', () => {
  it('reads the Media Storage SOP Class and Instance UIDs and the transfer syntax', () => {
    const meta = readFileMeta(fs.readFileSync(path.join(samples, 'CT_small.dcm')).subarray(0, 4096));
    expect(meta).toEqual({
      sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
      sopInstanceUid: '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322',
      transferSyntaxUid: '1.2.840.10008.1.2.1',
    });
  });

  it('is undefined for bytes without "DICM" at 128', () => {
    expect(readFileMeta(Buffer.alloc(400))).toBeUndefined();
    expect(readFileMeta(Buffer.from('short'))).toBeUndefined();
  });
});

describe('referencedFiles', () => {
  it('lists the Referenced File IDs of a DICOMDIR written by dcmmkdir', () => {
    const dir = disc('ids');
    expect(referencedFiles(fs.readFileSync(path.join(dir, 'DICOMDIR'))).sort()).toEqual([
      ['DATA', 'IM1'],
      ['DATA', 'IM2'],
      ['DATA', 'IM3'],
    ]);
  });

  it('throws on an instance that is not a DICOMDIR', () => {
    expect(() => referencedFiles(fs.readFileSync(path.join(samples, 'CT_small.dcm')))).toThrow(/Directory Record Sequence/);
  });
});

describe('walk', () => {
  it('gives the DICOMDIR references first, then the files beside it, each once', async () => {
    const dir = disc('order');
    fs.writeFileSync(path.join(dir, 'AAA.dcm'), 'x');
    fs.mkdirSync(path.join(dir, 'DATA', 'extra'));
    fs.writeFileSync(path.join(dir, 'DATA', 'extra', 'beside'), 'y');
    const found = await all([dir]);
    expect(found[0]).toMatchObject({ kind: 'dicomdir', path: path.join(dir, 'DICOMDIR'), references: 3 });
    const files = found.filter((f) => f.kind === 'file').map((f) => path.relative(dir, f.path));
    expect(files.slice(0, 3).sort()).toEqual(['DATA/IM1', 'DATA/IM2', 'DATA/IM3']);
    expect(files.slice(3).sort()).toEqual(['AAA.dcm', 'DATA/extra/beside']);
  });

  it('finds referenced files whose names were lowercased on copying', async () => {
    const dir = disc('lower');
    fs.renameSync(path.join(dir, 'DATA', 'IM1'), path.join(dir, 'DATA', 'im1'));
    fs.renameSync(path.join(dir, 'DATA'), path.join(dir, 'data'));
    const found = await all([dir]);
    expect(found.filter((f) => f.kind === 'problem')).toEqual([]);
    expect(
      found
        .filter((f) => f.kind === 'file')
        .map((f) => path.relative(dir, f.path))
        .sort(),
    ).toEqual(['data/IM2', 'data/IM3', 'data/im1']);
  });

  it('reports a file the DICOMDIR names that is missing, and one outside its folder, without stopping', async () => {
    const dir = path.join(work, 'missing');
    fs.mkdirSync(path.join(dir, 'A'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'A', 'ONE'), 'x');
    fs.writeFileSync(path.join(work, 'SECRET'), 'outside');
    fs.writeFileSync(
      path.join(dir, 'DICOMDIR'),
      dicomdirNaming([
        ['A', 'ONE'],
        ['A', 'GONE'],
        ['..', 'SECRET'],
      ]),
    );
    const found = await all([dir]);
    expect(found.filter((f) => f.kind === 'file').map((f) => f.path)).toEqual([path.join(dir, 'A', 'ONE')]);
    expect(found.filter((f) => f.kind === 'problem')).toEqual([
      { kind: 'problem', path: path.join(dir, 'A', 'GONE'), reason: 'named by the DICOMDIR but not found' },
      { kind: 'problem', path: path.join(work, 'SECRET'), reason: 'DICOMDIR names a file outside its folder: ..\\SECRET' },
    ]);
  });

  it('walks a folder whose DICOMDIR cannot be read, and says so', async () => {
    const dir = path.join(work, 'broken');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'DICOMDIR'), 'not a dicomdir');
    fs.writeFileSync(path.join(dir, 'IMG'), 'x');
    const found = await all([dir]);
    expect(found.map((f) => f.kind)).toEqual(['problem', 'file']);
    expect(found[0]).toMatchObject({ reason: expect.stringMatching(/^DICOMDIR cannot be read, its folder is walked instead/) });
  });

  it('does not loop on a symbolic link back up the tree', async () => {
    const dir = path.join(work, 'loop');
    fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'sub', 'f'), 'x');
    fs.symlinkSync(dir, path.join(dir, 'sub', 'up'));
    const found = await all([dir]);
    expect(found.map((f) => (f.kind === 'file' ? path.relative(dir, f.path) : f.kind))).toEqual(['sub/f']);
  });
});
