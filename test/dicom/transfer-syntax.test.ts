import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { parseInstance, ParseError } from '../../server/dicom/parse.js';
import { transferSyntax } from '../../server/dicom/transfer-syntax.js';

/** A Part-10 file with only a Transfer Syntax UID in its meta group, then `dataset` as the rest. */
function part10(ts: string, dataset: Buffer): Buffer {
  const uid = Buffer.from(ts.length % 2 ? `${ts}\0` : ts, 'latin1');
  const el = Buffer.alloc(8);
  el.writeUInt16LE(0x0002, 0);
  el.writeUInt16LE(0x0010, 2);
  el.write('UI', 4, 'latin1');
  el.writeUInt16LE(uid.length, 6);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), el, uid, dataset]);
}

async function failure(file: Buffer) {
  const err = await parseInstance(
    (async function* () {
      yield file;
    })(),
    { bulkThreshold: 1024, maxHeaderBytes: 1 << 20, maxSequenceDepth: 32, maxDataElements: 1_000_000 },
  ).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ParseError);
  return (err as ParseError).failure;
}

describe('transfer syntax table', () => {
  it.each(['1.2.840.10008.1.2.4.95', '1.2.840.10008.1.2.4.205'])('refuses a data set deflated by %s as unsupported (PS3.5 §A.5)', async (ts) => {
    const f = await failure(part10(ts, deflateRawSync(Buffer.alloc(64, 1))));
    expect(f).toEqual({ kind: 'unsupported', message: `deflated transfer syntax ${ts} is not supported` });
  });

  it('reads a syntax it does not know as Explicit VR Little Endian with encapsulated pixel data', () => {
    expect(transferSyntax('1.2.3.4')).toMatchObject({
      explicitVr: true,
      littleEndian: true,
      encapsulated: true,
      deflated: false,
      pixelMediaType: 'application/octet-stream',
      pixelLabel: '1.2.3.4',
      servedAsStored: true,
    });
  });
});
