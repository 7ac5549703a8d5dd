import { createHash, createHmac } from 'node:crypto';
import type { DicomJson, JsonAttribute } from '../dicom/json.js';
import type { ShiftKey } from '../db/search.js';
import { vrOf } from '../dicom/tags.js';
import { TABLE_E1_1, type BasicAction } from './table-e1-1.js';

// The Basic Application Level Confidentiality Profile (PS3.15 Annex E),
// applied attribute by attribute from Table E.1-1 (table-e1-1.ts) to DICOM
// JSON. The same function serves QIDO results, WADO-RS metadata and, through
// dicom/deid-part10.ts, whole Part-10 instances, so every view of one
// instance is de-identified alike.

/** A private data element the Retain Safe Private Option keeps: its block's creator, group and element byte (PS3.5 §7.8.1). */
export interface SafePrivate {
  readonly creator: string;
  /** Odd group, 4 hex digits. */
  readonly group: string;
  /** The low byte of the element number, 2 hex digits (the xx of gggg,00xx is the block). */
  readonly element: string;
}

/** The options of PS3.15 §E.3 a profile applies, beside the Basic Profile. */
export interface ProfileOptions {
  /** Retain Safe Private Option (E.3.10): the private elements known safe; absent, every private attribute is removed. */
  readonly retainSafePrivate?: readonly SafePrivate[];
  /** Retain UIDs Option (E.3.9). */
  readonly retainUids?: boolean;
  /** Retain Device Identity Option (E.3.8). */
  readonly retainDeviceIdentity?: boolean;
  /** Retain Institution Identity Option (E.3.11). */
  readonly retainInstitutionIdentity?: boolean;
  /** Retain Patient Characteristics Option (E.3.7). */
  readonly retainPatientCharacteristics?: boolean;
  /** Retain Longitudinal Temporal Information (E.3.6): full dates, or modified dates (one consistent shift per patient). */
  readonly retainLongitudinal?: 'full' | 'modified';
  /** Clean Descriptors Option (E.3.5). */
  readonly cleanDescriptors?: boolean;
  /** Clean Structured Content Option (E.3.4). */
  readonly cleanStructuredContent?: boolean;
  /** Clean Graphics Option (E.3.3). */
  readonly cleanGraphics?: boolean;
  /** Serve instances that may carry burned-in identifying text (E.1.1 rule on Burned In Annotation); default false. */
  readonly allowBurnedIn?: boolean;
}

/** The most days the Modified Dates option moves a patient's dates back; the least is 1. */
export const SHIFT_SPAN = 3650;

/** How a query key on an attribute matches what a view shows of it. */
export type ViewMatching = 'stored' | 'shifted' | 'none';

/** What one action does to one attribute once the options have been applied. */
type Action = 'D' | 'Z' | 'X' | 'K' | 'C' | 'U';

const OPTION_COLUMNS = [
  'retainSafePrivate',
  'retainUids',
  'retainDeviceIdentity',
  'retainInstitutionIdentity',
  'retainPatientCharacteristics',
  'fullDates',
  'modifiedDates',
  'cleanDescriptors',
  'cleanStructuredContent',
  'cleanGraphics',
] as const;
type OptionColumn = (typeof OPTION_COLUMNS)[number];

/** CID 7050 De-identification Method codes (PS3.16), one per option applied. */
const CID_7050: Record<OptionColumn | 'basic', [string, string]> = {
  basic: ['113100', 'Basic Application Confidentiality Profile'],
  cleanGraphics: ['113103', 'Clean Graphics Option'],
  cleanStructuredContent: ['113104', 'Clean Structured Content Option'],
  cleanDescriptors: ['113105', 'Clean Descriptors Option'],
  fullDates: ['113106', 'Retain Longitudinal Temporal Information Full Dates Option'],
  modifiedDates: ['113107', 'Retain Longitudinal Temporal Information Modified Dates Option'],
  retainPatientCharacteristics: ['113108', 'Retain Patient Characteristics Option'],
  retainDeviceIdentity: ['113109', 'Retain Device Identity Option'],
  retainUids: ['113110', 'Retain UIDs Option'],
  retainSafePrivate: ['113111', 'Retain Safe Private Option'],
  retainInstitutionIdentity: ['113112', 'Retain Institution Identity Option'],
};

function columnsOf(o: ProfileOptions): OptionColumn[] {
  const on: Record<OptionColumn, boolean> = {
    retainSafePrivate: o.retainSafePrivate !== undefined,
    retainUids: !!o.retainUids,
    retainDeviceIdentity: !!o.retainDeviceIdentity,
    retainInstitutionIdentity: !!o.retainInstitutionIdentity,
    retainPatientCharacteristics: !!o.retainPatientCharacteristics,
    fullDates: o.retainLongitudinal === 'full',
    modifiedDates: o.retainLongitudinal === 'modified',
    cleanDescriptors: !!o.cleanDescriptors,
    cleanStructuredContent: !!o.cleanStructuredContent,
    cleanGraphics: !!o.cleanGraphics,
  };
  return OPTION_COLUMNS.filter((c) => on[c]);
}

/**
 * One action per combination (PS3.15 §E.1.1): without the IOD at hand, Cairn
 * takes the last alternative, the one that satisfies every Type (D keeps a
 * Type 1 attribute, Z a Type 2 one; X/Z/U* keeps the sequence with the UIDs
 * in its items replaced), so a de-identified instance stays conformant.
 */
export function resolveCombination(basic: BasicAction): Action {
  switch (basic) {
    case 'Z/D':
    case 'X/D':
    case 'X/Z/D':
      return 'D';
    case 'X/Z':
      return 'Z';
    case 'X/Z/U*':
      return 'U';
    default:
      return basic;
  }
}

/**
 * The action of one row under the options chosen: an option's K (retain)
 * wins over its C (clean), either over the Basic Profile's action.
 */
export function actionOf(basic: BasicAction, cells: string, columns: readonly OptionColumn[]): Action {
  const chosen = columns.map((c) => cells[OPTION_COLUMNS.indexOf(c)]).filter((a) => a !== '-');
  if (chosen.includes('K')) return 'K';
  if (chosen.includes('C')) return 'C';
  return resolveCombination(basic);
}

/** The actions of a profile: one per table row, exact tags in a map, the XX patterns apart. */
interface Actions {
  exact: Map<string, Action>;
  patterns: { re: RegExp; action: Action }[];
  privateAction: Action;
}

function actionsFor(columns: readonly OptionColumn[]): Actions {
  const exact = new Map<string, Action>();
  const patterns: Actions['patterns'] = [];
  let privateAction: Action = 'X';
  for (const [tag, , basic, cells] of TABLE_E1_1) {
    const action = actionOf(basic, cells, columns);
    if (tag === 'private') privateAction = action;
    else if (tag.includes('X')) patterns.push({ re: new RegExp(`^${tag.replaceAll('X', '[0-9A-F]')}$`), action });
    else exact.set(tag, action);
  }
  return { exact, patterns, privateAction };
}

/** Instances of these SOP classes commonly carry burned-in text when they do not say otherwise (PS3.15 §E.1.1). */
const BURNED_IN_PRONE = [
  /^1\.2\.840\.10008\.5\.1\.4\.1\.1\.7(\.\d+)?$/, // Secondary Capture, single and multi-frame
  /^1\.2\.840\.10008\.5\.1\.4\.1\.1\.6\.[12]$/, // Ultrasound
  /^1\.2\.840\.10008\.5\.1\.4\.1\.1\.3\.1$/, // Ultrasound Multi-frame
  /^1\.2\.840\.10008\.5\.1\.4\.1\.1\.77\.1\.[1-6]\.1$/, // Video Endoscopic / Microscopic / Photographic
];

const BURNED_IN_ANNOTATION = '00280301';
const SOP_CLASS_UID = '00080016';

/** Why an instance is withheld from a view with this profile, or undefined when it may be served. */
export function withheldReason(attrs: DicomJson, options: ProfileOptions): string | undefined {
  if (options.allowBurnedIn) return undefined;
  const burnedIn = String(attrs[BURNED_IN_ANNOTATION]?.Value?.[0] ?? '').toUpperCase();
  if (burnedIn === 'YES') return 'it says its pixel data carries burned-in annotation (Burned In Annotation is YES)';
  if (burnedIn === 'NO') return undefined;
  const sopClass = String(attrs[SOP_CLASS_UID]?.Value?.[0] ?? '');
  if (BURNED_IN_PRONE.some((re) => re.test(sopClass)))
    return `its SOP class ${sopClass} commonly carries burned-in text and it does not say it has none (Burned In Annotation is absent)`;
  return undefined;
}

const DUMMY_TEXT = 'ANONYMIZED';
const NUMERIC_VRS = new Set(['IS', 'DS', 'US', 'SS', 'UL', 'SL', 'UV', 'SV', 'FL', 'FD', 'AT']);
const BINARY_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'UN']);
const TEXT_VRS = new Set(['LO', 'SH', 'ST', 'LT', 'UT', 'UC', 'PN', 'CS', 'AE', 'UR']);
/** Text a person types (coded strings, CS, are not). */
const FREE_TEXT_VRS = new Set(['LO', 'SH', 'ST', 'LT', 'UT', 'UC', 'PN']);

/**
 * The action on an attribute of structured content that has no row of its
 * own (a TEXT item's Text Value (0040,A160), say): free text takes the
 * Content Sequence's action, D a dummy, C cleaned; the codes of the Code
 * Sequence Macro, (0008,01xx), which give the report its structure, are
 * cleaned (any identifying value blotted out) under either; the rest is kept.
 */
function structuredAction(tag: string, vr: string, action: 'D' | 'C'): Action {
  if (!FREE_TEXT_VRS.has(vr)) return 'K';
  return tag.startsWith('000801') ? 'C' : action;
}
const PATIENT_ID = '00100020';
const PATIENT_NAME = '00100010';
/**
 * Content Sequence (0040,A730): the content tree of a structured report,
 * whose items carry free text (Text Value (0040,A160) has no row of its own
 * in Table E.1-1) and so are not kept as they are under any action.
 */
const CONTENT_SEQUENCE = '0040A730';

/**
 * A de-identification profile bound to one project's key. The key makes the
 * replacement UIDs, patient pseudonyms and date shift: the same original
 * gives the same value within a project, and values of two projects cannot
 * be linked without both keys.
 */
export class Deidentifier {
  private readonly columns: OptionColumn[];
  private readonly actions: Actions;
  private readonly safe: Set<string>;

  constructor(
    private readonly key: Buffer,
    readonly options: ProfileOptions,
  ) {
    if (key.length < 16) throw new Error('a de-identification key needs at least 16 bytes');
    this.columns = columnsOf(options);
    this.actions = actionsFor(this.columns);
    this.safe = new Set((options.retainSafePrivate ?? []).map((s) => `${s.group.toUpperCase()}|${s.creator.trim()}|${s.element.toUpperCase()}`));
  }

  /** The action this profile takes on a top-level or nested attribute (not private). */
  actionFor(tag: string): Action | undefined {
    const exact = this.actions.exact.get(tag);
    if (exact) return exact;
    if (tag.startsWith('5') || tag.startsWith('6')) for (const p of this.actions.patterns) if (p.re.test(tag)) return p.action;
    return undefined;
  }

  /** U (PS3.15 §E.1.1): a keyed hash of the original UID as a UUID-derived UID (PS3.5 §B.2), the same for the same UID in a project. */
  uid(original: string): string {
    if (this.options.retainUids) return original;
    const digest = this.mac(`uid:${original}`).subarray(0, 16);
    // PS3.5 §B.2: the 128-bit integer in decimal, under the 2.25 root.
    return `2.25.${BigInt(`0x${digest.toString('hex')}`).toString()}`;
  }

  /** The pseudonym a patient is given in this project, from the original Patient ID and its issuer. */
  patientPseudonym(attrs: DicomJson): string {
    return `P${this.mac(`patient:${patientKeyOf(attrs)}`)
      .subarray(0, 8)
      .toString('hex')
      .toUpperCase()}`;
  }

  /**
   * Days every date of a patient moves back under the Modified Dates option:
   * one shift per patient, 1 to SHIFT_SPAN days. search.ts evaluates the same
   * function in SQL (shiftKey()): the two must change together.
   */
  shiftDays(attrs: DicomJson): number {
    return 1 + (this.mac(`shift:${patientKeyOf(attrs)}`).readUInt32BE(0) % SHIFT_SPAN);
  }

  /**
   * The key of shiftDays() as the two padded key blocks of HMAC-SHA256 (RFC
   * 2104): HMAC(k, m) = SHA-256(outer ‖ SHA-256(inner ‖ m)). With them SQL
   * evaluates a patient's shift with its built-in sha256(), the key passed as
   * a query parameter and never stored (server/db/search.ts).
   */
  shiftKey(): ShiftKey {
    const block = Buffer.alloc(64);
    (this.key.length > 64 ? createHash('sha256').update(this.key).digest() : this.key).copy(block);
    return { inner: block.map((b) => b ^ 0x36) as Buffer, outer: block.map((b) => b ^ 0x5c) as Buffer, span: SHIFT_SPAN };
  }

  /**
   * How a QIDO matching key on `tag` matches what this profile shows of it:
   * as stored when the value is kept (K, and C on a time: whole-day shifts
   * leave times as they are); a date cleaned by the Modified Dates option as
   * the shifted date; otherwise never, since the value shown is empty, absent
   * or a dummy and a non-universal key matches no empty value (PS3.4
   * §C.2.2.2: zero-length values match universal matching only; PS3.18
   * §8.3.4.5: without emptyvaluematching).
   */
  matchingOf(tag: string): ViewMatching {
    const action = this.actionFor(tag) ?? 'K';
    if (action === 'K') return 'stored';
    if (action !== 'C') return 'none';
    const vr = vrOf(tag);
    if (vr === 'TM') return 'stored';
    if (vr === 'DA') return this.options.retainLongitudinal === 'modified' ? 'shifted' : 'stored';
    return 'none';
  }

  /** A de-identified copy of `attrs` (the original is not changed), with the attributes PS3.15 §E.1.1 and §E.3 require added. */
  apply(attrs: DicomJson, patient?: DicomJson): DicomJson {
    // A QIDO result of a lower level may carry no patient attribute: its patient is then told apart by `patient`, its study's attributes.
    const who = patient && !(PATIENT_ID in attrs) && !(PATIENT_NAME in attrs) ? patient : attrs;
    // Cleaned text must not repeat the patient's identifying values, wherever they are kept.
    const secrets = secretsOf(patient ? { ...patient, ...attrs } : attrs, this);
    const ctx: Ctx = { shift: this.options.retainLongitudinal === 'modified' ? this.shiftDays(who) : 0, secrets, attrs };
    const out = this.dataset(attrs, ctx, true);
    const pseudonym = this.patientPseudonym(who);
    // PS3.15 §E.1.1 Z: "a non-zero length value that may be a dummy value"; a keyed pseudonym lets a study be grouped by patient.
    if (PATIENT_NAME in out) out[PATIENT_NAME] = { vr: 'PN', Value: [{ Alphabetic: pseudonym }] };
    if (PATIENT_ID in out) out[PATIENT_ID] = { vr: 'LO', Value: [pseudonym] };
    out['00120062'] = { vr: 'CS', Value: ['YES'] };
    out['00120063'] = { vr: 'LO', Value: this.methodNames() };
    out['00120064'] = { vr: 'SQ', Value: this.methodCodes() };
    out['00280303'] = {
      vr: 'CS',
      Value: [this.options.retainLongitudinal === 'full' ? 'UNMODIFIED' : this.options.retainLongitudinal === 'modified' ? 'MODIFIED' : 'REMOVED'],
    };
    return sorted(out);
  }

  private methodNames(): string[] {
    return ['Cairn PS3.15 E.1.1 Basic Profile', ...this.columns.map((c) => CID_7050[c][1])];
  }

  private methodCodes(): DicomJson[] {
    return (['basic', ...this.columns] as const).map((c) => ({
      '00080100': { vr: 'SH', Value: [CID_7050[c][0]] },
      '00080102': { vr: 'SH', Value: ['DCM'] },
      '00080104': { vr: 'LO', Value: [CID_7050[c][1]] },
    }));
  }

  private dataset(attrs: DicomJson, ctx: Ctx, top: boolean): DicomJson {
    const out: DicomJson = {};
    const creators = privateCreators(attrs);
    for (const [tag, attr] of Object.entries(attrs)) {
      if (isPrivate(tag)) {
        if (this.keepPrivate(tag, creators)) out[tag] = structuredClone(attr);
        continue;
      }
      const action = this.actionFor(tag) ?? (ctx.structured ? structuredAction(tag, attr.vr, ctx.structured) : 'K');
      const result = this.act(tag, attr, action, ctx);
      if (result) out[tag] = result;
    }
    // Private creators stay only for the blocks that kept an element.
    for (const tag of Object.keys(out))
      if (isPrivate(tag) && isCreator(tag) && !Object.keys(out).some((t) => blockOf(t) === `${tag.slice(0, 4)}${tag.slice(6)}` && !isCreator(t)))
        delete out[tag];
    return top ? out : sorted(out);
  }

  private keepPrivate(tag: string, creators: Map<string, string>): boolean {
    if (this.actions.privateAction !== 'C') return false;
    if (isCreator(tag)) return true;
    const creator = creators.get(blockOf(tag));
    return creator !== undefined && this.safe.has(`${tag.slice(0, 4)}|${creator}|${tag.slice(6)}`);
  }

  private act(tag: string, attr: JsonAttribute, action: Action, ctx: Ctx): JsonAttribute | undefined {
    switch (action) {
      case 'X':
        return undefined;
      case 'Z':
        return { vr: attr.vr };
      case 'K':
        return this.keep(attr, ctx);
      case 'U':
        if (attr.vr === 'SQ') return this.keep(attr, ctx);
        return attr.vr === 'UI' ? mapValues(attr, (v) => this.uid(String(v))) : this.dummy(attr, ctx);
      case 'D':
        return this.dummy(attr, ctx, tag);
      case 'C':
        return this.clean(tag, attr, ctx);
    }
  }

  /** K: unchanged, except a sequence, whose items are de-identified in turn (PS3.15 §E.1.1 K). */
  private keep(attr: JsonAttribute, ctx: Ctx): JsonAttribute {
    if (attr.vr !== 'SQ') return structuredClone(attr);
    return { vr: 'SQ', ...(attr.Value ? { Value: attr.Value.map((item) => this.dataset((item ?? {}) as DicomJson, ctx, false)) } : {}) };
  }

  /** D: a non-zero length dummy value consistent with the VR. */
  private dummy(attr: JsonAttribute, ctx: Ctx, tag?: string): JsonAttribute {
    const vr = attr.vr;
    // PS3.15 Table E.1-1 gives the Content Sequence D, and C only under the Clean Structured Content Option (§E.3.4): item by item, its free text becomes a dummy.
    if (tag === CONTENT_SEQUENCE) return this.keep(attr, { ...ctx, structured: 'D' });
    if (vr === 'SQ') return this.keep(attr, ctx);
    if (vr === 'UI') return attr.Value ? mapValues(attr, (v) => this.uid(String(v))) : { vr, Value: [this.uid('dummy')] };
    if (BINARY_VRS.has(vr)) return { vr, InlineBinary: 'AAA=' };
    if (NUMERIC_VRS.has(vr)) return { vr, Value: [0] };
    const dummy: Record<string, unknown> = { DA: '19000101', TM: '000000', DT: '19000101000000', AS: '000D', PN: { Alphabetic: DUMMY_TEXT } };
    return { vr, Value: [dummy[vr] ?? DUMMY_TEXT] };
  }

  /**
   * C: replaced by values of similar meaning that carry no identity. Dates
   * move back by the patient's shift (Modified Dates; times are kept, a shift
   * of whole days leaves them right); sequences are cleaned item by item;
   * text keeps its wording with every identifying value of the instance
   * (names, IDs, accession, birth date …) blotted out; graphics, whose marks
   * Cairn cannot read, are removed.
   */
  private clean(tag: string, attr: JsonAttribute, ctx: Ctx): JsonAttribute | undefined {
    const vr = attr.vr;
    if (tag === CONTENT_SEQUENCE) return this.keep(attr, { ...ctx, structured: 'C' });
    if (vr === 'SQ') return this.keep(attr, ctx);
    if (vr === 'DA') return mapValues(attr, (v) => shiftDate(String(v), ctx.shift));
    if (vr === 'DT') return mapValues(attr, (v) => shiftDate(String(v).slice(0, 8), ctx.shift) + String(v).slice(8));
    if (vr === 'TM') return structuredClone(attr);
    if (BINARY_VRS.has(vr)) return undefined;
    if (TEXT_VRS.has(vr) && tag !== PATIENT_ID) return mapValues(attr, (v) => blot(v, ctx.secrets));
    if (NUMERIC_VRS.has(vr) || vr === 'AS') return structuredClone(attr);
    return this.dummy(attr, ctx);
  }

  private mac(text: string): Buffer {
    return createHmac('sha256', this.key).update(text).digest();
  }
}

interface Ctx {
  /** Inside a Content Sequence: its action, D (Basic Profile) or C (Clean Structured Content Option). */
  structured?: 'D' | 'C';
  shift: number;
  secrets: RegExp | undefined;
  attrs: DicomJson;
}

/**
 * Who the patient is for pseudonyms and date shifts: the Patient ID alone
 * (the name when there is none), since every QIDO level carries it while the
 * issuer is kept at instance level only, and one patient must get one shift
 * in every answer.
 */
function patientKeyOf(attrs: DicomJson): string {
  const id = String(attrs[PATIENT_ID]?.Value?.[0] ?? '');
  if (id) return `id:${id}`;
  const name = attrs[PATIENT_NAME]?.Value?.[0] as { Alphabetic?: string } | undefined;
  return `name:${name?.Alphabetic ?? ''}`;
}

/**
 * The identifying values of an instance that cleaned text must not repeat:
 * every value of an attribute the profile removes or replaces, person names
 * also word by word. Short values (under 3 characters) are left, they would
 * blot ordinary words.
 */
function secretsOf(attrs: DicomJson, d: Deidentifier): RegExp | undefined {
  const words = new Set<string>();
  for (const [tag, attr] of Object.entries(attrs)) {
    const action = d.actionFor(tag);
    if (!action || action === 'K' || action === 'C' || !attr.Value || attr.vr === 'SQ' || attr.vr === 'UI') continue;
    for (const v of attr.Value) {
      if (attr.vr === 'PN') {
        const pn = v as Record<string, string>;
        for (const part of Object.values(pn)) for (const w of String(part).split(/[\^= ,]+/)) if (w.length >= 3) words.add(w);
        continue;
      }
      const s = typeof v === 'string' || typeof v === 'number' ? String(v).trim() : '';
      if (s.length >= 3) words.add(s);
    }
  }
  if (!words.size) return undefined;
  const alternatives = [...words].sort((a, b) => b.length - a.length).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(alternatives.join('|'), 'gi');
}

function blot(v: unknown, secrets: RegExp | undefined): unknown {
  if (!secrets) return v;
  if (typeof v === 'string') return v.replace(secrets, (m) => '*'.repeat(m.length));
  if (v && typeof v === 'object') {
    const pn: Record<string, string> = {};
    for (const [k, s] of Object.entries(v as Record<string, string>)) pn[k] = s.replace(secrets, (m) => '*'.repeat(m.length));
    return pn;
  }
  return v;
}

function mapValues(attr: JsonAttribute, f: (v: unknown) => unknown): JsonAttribute {
  return attr.Value ? { vr: attr.vr, Value: attr.Value.map((v) => (v === null || v === undefined ? v : f(v))) } : { vr: attr.vr };
}

/**
 * A DA value moved back `days` days. A value that is not a calendar date of
 * years 0001–9999, or that would move before year 1, is removed rather than
 * kept. search.ts's shifted matching tests the same, so a query never finds
 * a date a view does not show.
 */
export function shiftDate(da: string, days: number): string | null {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(da);
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not read years 0–99 as 1900–1999.
  date.setUTCFullYear(y, mo - 1, d);
  if (y < 1 || date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return null;
  if (!days) return da;
  date.setUTCDate(date.getUTCDate() - days);
  if (date.getUTCFullYear() < 1) return null;
  return date.toISOString().slice(0, 10).replaceAll('-', '');
}

function isPrivate(tag: string): boolean {
  return Number.parseInt(tag.slice(3, 4), 16) % 2 === 1;
}

/** A private creator: (gggg,0010-00FF) (PS3.5 §7.8.1). */
function isCreator(tag: string): boolean {
  return tag.slice(4, 6) === '00' && tag.slice(6) >= '10';
}

/** The block a private element belongs to, as group + block byte. */
function blockOf(tag: string): string {
  return `${tag.slice(0, 4)}${tag.slice(4, 6)}`;
}

function privateCreators(attrs: DicomJson): Map<string, string> {
  const out = new Map<string, string>();
  for (const [tag, attr] of Object.entries(attrs))
    if (isPrivate(tag) && isCreator(tag)) out.set(`${tag.slice(0, 4)}${tag.slice(6)}`, String(attr.Value?.[0] ?? '').trim());
  return out;
}

function sorted(attrs: DicomJson): DicomJson {
  const out: DicomJson = {};
  for (const tag of Object.keys(attrs).sort()) out[tag] = attrs[tag];
  return out;
}
