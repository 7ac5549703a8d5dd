import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { crc32, type ZipEntry, zipStream } from '../../server/export/zip.js';

// The zip writer of the export download: stored entries streamed with data
// descriptors and ZIP64 extra fields, read back by Info-ZIP unzip.

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-zip-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

async function collect(entries: ZipEntry[], zip64?: 'always'): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const b of zipStream(entries, { zip64 })) out.push(b);
  return Buffer.concat(out);
}

function unzipped(zip: Buffer): Record<string, Buffer> {
  const dir = fs.mkdtempSync(path.join(work, 'u-'));
  fs.writeFileSync(path.join(dir, 'a.zip'), zip);
  execFileSync('unzip', ['-tq', 'a.zip'], { cwd: dir });
  execFileSync('unzip', ['-q', 'a.zip', '-d', 'out'], { cwd: dir });
  const files: Record<string, Buffer> = {};
  for (const e of fs.readdirSync(path.join(dir, 'out'), { recursive: true, withFileTypes: true }))
    if (e.isFile()) files[path.relative(path.join(dir, 'out'), path.join(e.parentPath, e.name))] = fs.readFileSync(path.join(e.parentPath, e.name));
  return files;
}

async function* chunks(...parts: Buffer[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield p;
}

const entries = (): ZipEntry[] => [
  { name: 'DICOM/P0000001/I0000001', body: async () => chunks(Buffer.alloc(70_000, 1), Buffer.alloc(3, 2)) },
  { name: 'EMPTY', body: async () => Buffer.alloc(0) },
  { name: 'DICOMDIR', body: async () => Buffer.from('directory') },
];

describe('zip writer', () => {
  it('writes an archive unzip tests clean and extracts byte for byte', async () => {
    const files = unzipped(await collect(entries()));
    expect(files['DICOM/P0000001/I0000001'].equals(Buffer.concat([Buffer.alloc(70_000, 1), Buffer.alloc(3, 2)]))).toBe(true);
    expect(files.EMPTY).toHaveLength(0);
    expect(files.DICOMDIR.toString()).toBe('directory');
  });

  it('writes the ZIP64 central directory and end records that unzip reads', async () => {
    const zip = await collect(entries(), 'always');
    // The ZIP64 end of central directory record and its locator (APPNOTE §4.3.14, §4.3.15).
    expect(zip.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06]))).toBe(true);
    expect(zip.includes(Buffer.from([0x50, 0x4b, 0x06, 0x07]))).toBe(true);
    expect(unzipped(zip).DICOMDIR.toString()).toBe('directory');
  });

  it('sends an entry as its bytes arrive, and opens the next entry only after it', async () => {
    const events: string[] = [];
    async function* slow(): AsyncGenerator<Buffer> {
      events.push('pull 1');
      yield Buffer.from('first');
      events.push('pull 2');
      yield Buffer.from('second');
    }
    const it = zipStream([
      { name: 'A', body: async () => slow() },
      {
        name: 'B',
        body: async () => {
          events.push('open B');
          return Buffer.from('b');
        },
      },
    ]);
    const header = await it.next();
    expect(header.value?.readUInt32LE(0)).toBe(0x04034b50);
    expect((await it.next()).value?.toString()).toBe('first');
    expect(events).toEqual(['pull 1']);
    for await (const _ of it);
    expect(events).toEqual(['pull 1', 'pull 2', 'open B']);
  });

  it('computes the CRC-32 of ISO 3309 (the check value of "123456789")', () => {
    expect(crc32(Buffer.from('123456789')).toString(16)).toBe('cbf43926');
    expect(crc32(Buffer.from('56789'), crc32(Buffer.from('1234')))).toBe(0xcbf43926);
  });
});
