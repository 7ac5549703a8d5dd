import { ATTRIBUTES, SEQUENCE_MATCHING_KEYS, type Matching } from '../dicom/attributes.js';
import { resolveAttribute } from '../dicom/tags.js';
import { isValidUid } from '../dicom/uid.js';
import type { Condition, Level, Match } from '../db/search.js';
import { ApiError } from '../errors.js';
import { queryPairs } from '../http/client-text.js';

// QIDO-RS query parameters (PS3.18 §8.3.4, §10.6.1.2) → a checked query.
// Anything the server cannot honour exactly is a 400 naming the parameter,
// except the optional matching switches, whose standard answer is a Warning.

/** Server maximum page size, also the default (PS3.18 §8.3.4.4: the origin server may cap results). */
export const MAX_LIMIT = 1000;

// The supported matching keys (server/dicom/attributes.ts): every required
// key of PS3.18 Table 10.6.1-5 plus a few optional ones with their own
// columns. Keys of a higher level may be used at a lower one (relational
// queries, §10.6.1.2).
export const KEYS: Readonly<Record<string, { level: Level; type: Matching }>> = Object.fromEntries([
  ...ATTRIBUTES.flatMap((e) => (e.matching ? [[e.tag, { level: e.level, type: e.matching }] as const] : [])),
  ...SEQUENCE_MATCHING_KEYS.map((k) => [k.path, { level: k.level, type: k.matching }] as const),
]);

const DEPTH: Record<Level, number> = { study: 0, series: 1, instance: 2 };

export interface QidoQuery {
  matches: Match[];
  /** Tags to return beyond the defaults: matching keys (universal ones too) and includefield. */
  include: Set<string>;
  includeAll: boolean;
  limit: number;
  offset: number;
  /** Optional matching switches that were asked for and are not supported (each gets a Warning). */
  unsupported: ('fuzzymatching' | 'emptyvaluematching' | 'multiplevaluematching')[];
}

const bad = (message: string) => new ApiError(400, 'InvalidQuery', message);

/**
 * Parses a raw query string; percent-decoding happens before lists are split
 * (OHIF sends `%2C`). A parameter whose bytes are not UTF-8 or hold a control
 * character (a NUL, which PostgreSQL refuses in text) is a 400 naming it.
 */
export function parseQidoQuery(querystring: string, level: Level): QidoQuery {
  const q: QidoQuery = { matches: [], include: new Set(), includeAll: false, limit: MAX_LIMIT, offset: 0, unsupported: [] };
  const seen = new Set<string>();
  for (const [name, value] of queryPairs(querystring)) {
    if (name === 'includefield') includeFields(q, value);
    else if (name === 'limit') q.limit = Math.min(count(name, value), MAX_LIMIT);
    else if (name === 'offset') q.offset = count(name, value);
    else if (name === 'fuzzymatching' || name === 'emptyvaluematching' || name === 'multiplevaluematching') {
      // §8.3.4.2, §8.3.4.5, §8.3.4.6: when not supported, match literally and
      // say so in a Warning (never a 400 for a well-formed true/false).
      if (value !== 'true' && value !== 'false') throw bad(`${name} must be true or false, not "${value}"`);
      if (value === 'true') q.unsupported.push(name);
    } else {
      const tag = matchingKey(name, level);
      if (seen.has(tag)) throw bad(`matching key ${name} is given more than once`);
      seen.add(tag);
      q.include.add(tag.split('.')[0]);
      const cond = condition(name, KEYS[tag].type, value);
      if (cond) q.matches.push({ tag, cond });
    }
  }
  return q;
}

function count(name: string, value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw bad(`${name} must be a non-negative integer, not "${value}"`);
  return Number(value);
}

function includeFields(q: QidoQuery, value: string): void {
  for (const field of value.split(',').map((f) => f.trim())) {
    if (field === 'all') q.includeAll = true;
    else {
      const a = resolveAttribute(field);
      if (!a) throw bad(`includefield "${field}" is not a known attribute keyword or tag`);
      q.include.add(a.tag);
    }
  }
}

/** A keyword or tag path (`00400275.00400009`) → its key in KEYS, checked against the query level. */
function matchingKey(name: string, level: Level): string {
  const parts = name.split('.').map((p) => resolveAttribute(p));
  if (parts.some((p) => !p)) throw bad(`unknown query parameter "${name}"`);
  const tag = parts.map((p) => p!.tag).join('.');
  const key = KEYS[tag];
  if (!key) throw bad(`"${name}" is not a supported matching key`);
  if (DEPTH[key.level] > DEPTH[level]) throw bad(`"${name}" is a ${key.level} level key and cannot be matched in a ${level} level query`);
  return tag;
}

/** The condition for one key's value; undefined for universal matching (§C.2.2.2.3, and a lone "*" per §C.2.2.2.4). */
function condition(name: string, type: Matching, value: string): Condition | undefined {
  if (value === '' || (value === '*' && type !== 'uid' && type !== 'int')) return undefined;
  switch (type) {
    case 'uid': {
      // §C.2.2.2.2 UID list matching; QIDO lists are comma-separated (§8.3.4.1), DIMSE ones use backslash.
      const uids = value.split(/[,\\]/);
      const badUid = uids.find((u) => !isValidUid(u));
      if (badUid !== undefined) throw bad(`${name}: "${badUid}" is not a valid UID`);
      return { op: 'in', values: uids };
    }
    case 'int':
      if (!/^[+-]?\d{1,9}$/.test(value)) throw bad(`${name} must be an integer, not "${value}"`);
      return { op: 'in', values: [Number(value)] };
    case 'text':
      return /[*?]/.test(value) ? { op: 'like', pattern: likePattern(value) } : { op: 'in', values: [value] };
    case 'list': {
      // ModalitiesInStudy with several values matches a study holding any of them.
      const values = value.split(/[,\\]/).filter((v) => v);
      if (values.some((v) => /[*?]/.test(v))) {
        if (values.length > 1) throw bad(`${name}: wildcards are not supported in a list of values`);
        return { op: 'like', pattern: likePattern(values[0]) };
      }
      return { op: 'in', values };
    }
    case 'pn':
      // §C.2.2.2.1 and §C.2.2.2.4 leave PN case handling to the implementation:
      // Cairn matches person names case-insensitively, single values and
      // wildcards alike. Without "=" the value may match any component group;
      // with it, groups are matched by position.
      return { op: 'pn', groups: value.toUpperCase().split('=').map(likePattern) };
    case 'date':
      return range(
        name,
        value,
        parseDate,
        (d) => d,
        (d) => d,
        'range',
      );
    case 'time':
      return range(
        name,
        value,
        parseTime,
        (t) => padTime(t, '0'),
        (t) => padTime(t, '9'),
        'time',
      );
  }
}

/** §C.2.2.2.4: "*" any sequence, "?" one character; LIKE's own metacharacters are escaped. */
function likePattern(value: string): string {
  return value
    .replace(/[\\%_]/g, (c) => `\\${c}`)
    .replace(/\*/g, '%')
    .replace(/\?/g, '_');
}

/**
 * §C.2.2.2.5 range matching, inclusive: `a-b`, `a-`, `-b`; a single value is
 * the range of itself. For TM, a bound of lower precision covers its whole
 * span (`-1030` includes 10:30:59.9), so stored values of any precision compare right.
 */
function range(
  name: string,
  value: string,
  check: (name: string, v: string) => void,
  low: (v: string) => string,
  high: (v: string) => string,
  op: 'range' | 'time',
): Condition {
  const parts = value.split('-');
  if (parts.length > 2 || (parts.length === 2 && !parts[0] && !parts[1])) throw bad(`${name}: "${value}" is not a valid range`);
  for (const p of parts) if (p) check(name, p);
  const [from, to] = parts.length === 1 ? [parts[0], parts[0]] : parts;
  return { op, from: from ? low(from) : undefined, to: to ? high(to) : undefined };
}

function parseDate(name: string, v: string): void {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(v);
  const d = m ? new Date(Date.UTC(+m[1], +m[2] - 1, +m[3])) : undefined;
  if (!m || !d || d.getUTCFullYear() !== +m[1] || d.getUTCMonth() !== +m[2] - 1 || d.getUTCDate() !== +m[3]) {
    throw bad(`${name}: "${v}" is not a valid date (YYYYMMDD)`);
  }
}

function parseTime(name: string, v: string): void {
  const m = /^(\d{2})(?:(\d{2})(?:(\d{2})(?:\.\d{1,6})?)?)?$/.exec(v);
  if (!m || +m[1] > 23 || (m[2] && +m[2] > 59) || (m[3] && +m[3] > 60)) throw bad(`${name}: "${v}" is not a valid time (HHMMSS.FFFFFF)`);
}

/** `HH[MM[SS[.F]]]` → `HHMMSS.ffffff`, missing digits filled with `fill`. */
function padTime(t: string, fill: '0' | '9'): string {
  const [hms, frac = ''] = t.split('.');
  return `${hms.padEnd(6, fill)}.${frac.padEnd(6, fill)}`;
}
