// A C-STORE carries the data set alone, in the transfer syntax of its
// presentation context (PS3.7 §9.3.1); Cairn keeps every instance as a
// Part-10 file. These bytes go before the data set as received: the 128-byte
// preamble, "DICM" and the File Meta Information (PS3.10 §7.1), always
// Explicit VR Little Endian. The data set itself, pixel data included, is
// kept byte for byte in the syntax it arrived in.

/** Cairn's Implementation Class UID (PS3.7 §D.3.3.2), a UUID-derived UID (PS3.5 §B.2). */
export const IMPLEMENTATION_CLASS_UID = '2.25.182887945409595959625285890220610391143';
export const IMPLEMENTATION_VERSION = 'CAIRN_01';

export interface FileMeta {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  /** The AE that sent the instance: (0002,0016) Source Application Entity Title. */
  sourceAe: string;
}

export function part10Header(meta: FileMeta): Buffer {
  const elements = [
    element(0x0001, 'OB', Buffer.from([0, 1])),
    element(0x0002, 'UI', text(meta.sopClassUid, 0)),
    element(0x0003, 'UI', text(meta.sopInstanceUid, 0)),
    element(0x0010, 'UI', text(meta.transferSyntaxUid, 0)),
    element(0x0012, 'UI', text(IMPLEMENTATION_CLASS_UID, 0)),
    element(0x0013, 'SH', text(IMPLEMENTATION_VERSION, 0x20)),
    element(0x0016, 'AE', text(meta.sourceAe.trim(), 0x20)),
  ];
  const body = Buffer.concat(elements);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(body.length);
  const prefix = Buffer.alloc(132);
  prefix.write('DICM', 128, 'latin1');
  return Buffer.concat([prefix, element(0x0000, 'UL', groupLength), body]);
}

/** A value padded to even length (PS3.5 §6.2: UI with NUL, text with space). */
function text(value: string, pad: number): Buffer {
  const b = Buffer.from(value, 'latin1');
  return b.length % 2 ? Buffer.concat([b, Buffer.from([pad])]) : b;
}

/** One group 0002 element in Explicit VR Little Endian (PS3.5 §7.1.2). */
function element(elementNo: number, vr: string, value: Buffer): Buffer {
  const long = vr === 'OB';
  const head = Buffer.alloc(long ? 12 : 8);
  head.writeUInt16LE(0x0002, 0);
  head.writeUInt16LE(elementNo, 2);
  head.write(vr, 4, 'latin1');
  if (long) head.writeUInt32LE(value.length, 8);
  else head.writeUInt16LE(value.length, 6);
  return Buffer.concat([head, value]);
}
