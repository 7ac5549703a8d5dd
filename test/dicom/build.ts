import { uid } from '../synthetic.js';

// Part-10 files written byte by byte, for shapes dcmjs' writer cannot make
// (undefined lengths nested thousands deep, Implicit VR, elements sent as UN).

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
export const UNDEFINED = 0xffffffff;
export const EXPLICIT_LE = '1.2.840.10008.1.2.1';
export const IMPLICIT_LE = '1.2.840.10008.1.2';

function tagBytes(tag: string): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16LE(parseInt(tag.slice(0, 4), 16), 0);
  b.writeUInt16LE(parseInt(tag.slice(4), 16), 2);
  return b;
}

/** A value as bytes, padded to even length (space for text, NUL for UI). */
export function text(s: string, pad = ' '): Buffer {
  return Buffer.from(s.length % 2 ? s + pad : s, 'latin1');
}

export function u16(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 2);
  for (const [i, v] of values.entries()) b.writeUInt16LE(v & 0xffff, i * 2);
  return b;
}

/** An Explicit VR Little Endian element (PS3.5 §7.1.2); `length` overrides the value's own (UNDEFINED for sequences). */
export function el(tag: string, vr: string, value: Buffer = Buffer.alloc(0), length = value.length): Buffer {
  const head = Buffer.alloc(LONG_VRS.has(vr) ? 12 : 8);
  tagBytes(tag).copy(head, 0);
  head.write(vr, 4, 'latin1');
  if (LONG_VRS.has(vr)) head.writeUInt32LE(length, 8);
  else head.writeUInt16LE(length, 6);
  return Buffer.concat([head, value]);
}

/** An Implicit VR Little Endian element (PS3.5 §7.1.3). */
export function iel(tag: string, value: Buffer = Buffer.alloc(0), length = value.length): Buffer {
  const head = Buffer.alloc(8);
  tagBytes(tag).copy(head, 0);
  head.writeUInt32LE(length, 4);
  return Buffer.concat([head, value]);
}

/** An item with defined length, or of undefined length closed by an item delimiter. */
export function item(content: Buffer, undefinedLength = false): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16LE(0xfffe, 0);
  head.writeUInt16LE(0xe000, 2);
  head.writeUInt32LE(undefinedLength ? UNDEFINED : content.length, 4);
  return Buffer.concat([head, content, ...(undefinedLength ? [delimiter(0xe00d)] : [])]);
}

export function delimiter(element: 0xe00d | 0xe0dd): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(0xfffe, 0);
  b.writeUInt16LE(element, 2);
  return b;
}

/** An explicit SQ element holding these items, of undefined length (closed by a delimiter) or defined. */
export function sq(tag: string, items: Buffer[], undefinedLength = false): Buffer {
  const body = Buffer.concat(items);
  return undefinedLength ? Buffer.concat([el(tag, 'SQ', Buffer.alloc(0), UNDEFINED), body, delimiter(0xe0dd)]) : el(tag, 'SQ', body);
}

export interface Uids {
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  sopClassUid: string;
}

export function newUids(sopClassUid = '1.2.840.10008.5.1.4.1.1.7'): Uids {
  return { studyUid: uid(), seriesUid: uid(), sopInstanceUid: uid(), sopClassUid };
}

/**
 * A Part-10 file: preamble, File Meta Information (always Explicit VR LE,
 * PS3.10 §7.1), then the data set made of `before` (elements below the
 * identifying UIDs' tags, in order), the four UIDs, and `after`.
 */
export function part10(u: Uids, opts: { ts?: string; before?: Buffer[]; after?: Buffer[] } = {}): Buffer {
  const ts = opts.ts ?? EXPLICIT_LE;
  const implicit = ts === IMPLICIT_LE;
  const meta = Buffer.concat([
    el('00020001', 'OB', Buffer.from([0, 1])),
    el('00020002', 'UI', text(u.sopClassUid, '\0')),
    el('00020003', 'UI', text(u.sopInstanceUid, '\0')),
    el('00020010', 'UI', text(ts, '\0')),
    el('00020012', 'UI', text('2.25.1', '\0')),
  ]);
  const e = (tag: string, vr: string, v: Buffer) => (implicit ? iel(tag, v) : el(tag, vr, v));
  const ds = Buffer.concat([
    e('00080016', 'UI', text(u.sopClassUid, '\0')),
    e('00080018', 'UI', text(u.sopInstanceUid, '\0')),
    ...(opts.before ?? []),
    e('0020000D', 'UI', text(u.studyUid, '\0')),
    e('0020000E', 'UI', text(u.seriesUid, '\0')),
    ...(opts.after ?? []),
  ]);
  return Buffer.concat([
    Buffer.alloc(128),
    Buffer.from('DICM', 'latin1'),
    el('00020000', 'UL', Buffer.from([meta.length & 0xff, (meta.length >> 8) & 0xff, 0, 0])),
    meta,
    ds,
  ]);
}

/**
 * Content items nested `depth` deep: each (0040,A730) Content Sequence of
 * undefined length holds one item of undefined length holding the next, as
 * an SR content tree does (PS3.3 C.17.3), without the content of the items.
 */
export function nestedContent(depth: number): Buffer {
  const open = Buffer.concat([el('0040A730', 'SQ', Buffer.alloc(0), UNDEFINED), item(Buffer.alloc(0), true).subarray(0, 8)]);
  const close = Buffer.concat([delimiter(0xe00d), delimiter(0xe0dd)]);
  return Buffer.concat([open.toString('latin1').repeat(depth), close.toString('latin1').repeat(depth)].map((s) => Buffer.from(s, 'latin1')));
}

function code(value: string, scheme: string, meaning: string): Buffer {
  return Buffer.concat([el('00080100', 'SH', text(value)), el('00080102', 'SH', text(scheme)), el('00080104', 'LO', text(meaning))]);
}

/**
 * An SR content item `levels` deep (PS3.3 C.17.3): CONTAINERs each holding
 * the next in a Content Sequence of undefined length, the last a NUM with a
 * measured value and its units, every item named by a coded concept.
 */
export function contentItem(level: number, levels: number): Buffer {
  const parts = [
    el('0040A010', 'CS', text('CONTAINS')),
    el('0040A040', 'CS', text(level === levels ? 'NUM' : 'CONTAINER')),
    sq('0040A043', [item(code('111', '99TEST', `Level ${level}`))]),
  ];
  if (level === levels) {
    parts.push(sq('0040A300', [item(Buffer.concat([sq('004008EA', [item(code('mm', 'UCUM', 'mm'))]), el('0040A30A', 'DS', text('12.5'))]))]));
  } else {
    parts.push(el('0040A050', 'CS', text('SEPARATE')), sq('0040A730', [item(contentItem(level + 1, levels), true)], true));
  }
  return Buffer.concat(parts);
}
