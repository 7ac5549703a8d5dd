import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { MultipartReader, multipartStream, parseMediaType } from '../server/http/multipart.js';

async function readAll(body: Buffer, boundary: string, chunk: number): Promise<{ headers: Record<string, string>; body: string }[]> {
  const chunks = Array.from({ length: Math.ceil(body.length / chunk) }, (_, i) => body.subarray(i * chunk, (i + 1) * chunk));
  const reader = new MultipartReader(Readable.from(chunks), boundary);
  const out: { headers: Record<string, string>; body: string }[] = [];
  for (let p = await reader.next(); p; p = await reader.next()) {
    const parts: Buffer[] = [];
    for await (const c of p.body) parts.push(c);
    out.push({ headers: p.headers, body: Buffer.concat(parts).toString('latin1') });
  }
  return out;
}

const boundary = 'xYz-123';
const body = Buffer.from(
  `preamble\r\n--${boundary}\r\nContent-Type: application/dicom\r\n\r\nfirst\r\n--xYz-12 almost\r\n` +
    `--${boundary} \r\nContent-Type: application/dicom\r\n\r\n\r\n--${boundary}\r\n\r\nthird\r\n--${boundary}--\r\nepilogue`,
);

describe('MultipartReader', () => {
  for (const size of [1, 2, 3, 5, 8, 13, 64, 4096]) {
    it(`splits the same parts whatever the chunk size (${size})`, async () => {
      const parts = await readAll(body, boundary, size);
      expect(parts.map((p) => p.body)).toEqual(['first\r\n--xYz-12 almost', '', 'third']);
      expect(parts[0].headers['content-type']).toBe('application/dicom');
    });
  }

  it('reads the rest of the body without making parts of it after discardRest()', async () => {
    let pulled = 0;
    const chunks = Array.from({ length: Math.ceil(body.length / 5) }, (_, i) => body.subarray(i * 5, (i + 1) * 5));
    async function* source() {
      for (const c of chunks) {
        pulled++;
        yield c;
      }
    }
    const reader = new MultipartReader(source(), boundary);
    const first = await reader.next();
    expect(first!.headers['content-type']).toBe('application/dicom');
    await reader.discardRest();
    expect(pulled).toBe(chunks.length);
    expect(await reader.next()).toBeNull();
  });

  it('rejects a body without a closing boundary', async () => {
    await expect(readAll(Buffer.from(`--${boundary}\r\n\r\nabc`), boundary, 2)).rejects.toThrow(/closing boundary/);
  });
});

describe('parseMediaType', () => {
  it('reads quoted and unquoted parameters case-insensitively', () => {
    expect(parseMediaType('Multipart/Related; Type="application/dicom"; boundary="a;b"')).toEqual({
      type: 'multipart/related',
      params: { type: 'application/dicom', boundary: 'a;b' },
    });
  });
});

describe('multipartStream cut short', () => {
  it('closes the body it was sending and the one it had opened next when the response is destroyed', async () => {
    const bodies = [0, 1, 2].map(() => new Readable({ read() {} }));
    bodies[0].push(Buffer.alloc(1000, 1));
    const opened: number[] = [];
    const out = multipartStream(
      'b',
      bodies.map((b, i) => ({
        contentType: 'application/dicom',
        body: () => {
          opened.push(i);
          return b;
        },
      })),
    );
    await new Promise((r) => out.once('data', r));
    await new Promise((r) => setImmediate(r));
    out.destroy();
    // The generator notices at its next step, when more bytes of the blob arrive.
    bodies[0].push(Buffer.alloc(1000, 2));
    await new Promise((r) => setTimeout(r, 20));
    expect(opened).toEqual([0, 1]);
    expect(bodies[0].destroyed).toBe(true);
    expect(bodies[1].destroyed).toBe(true);
    expect(bodies[2].destroyed).toBe(false);
  });
});
