import type { RouterContext } from '@koa/router';
import type { AppDeps } from '../deps.js';
import { storedAttributes } from '../db/build-rows.js';
import { searchIndex, type Level, type SearchRow, type SearchSpec } from '../db/search.js';
import type { DicomJson, JsonAttribute } from '../dicom/json.js';
import { SERIES_LEVEL, STUDY_LEVEL } from '../dicom/levels.js';
import { Tag, vrOf } from '../dicom/tags.js';
import { ApiError } from '../errors.js';
import { parseAccept, typeMatches } from '../http/accept.js';
import { dicomwebBase } from '../http/base-url.js';
import { parseQidoQuery, type QidoQuery } from './qido-params.js';
import { callerOf } from '../http/guard.js';
import { hasView, present } from '../present.js';

// QIDO-RS (PS3.18 §10.6) on the six search paths of the route table.

/**
 * How much of a level each result carries: 'full' = the return attributes of
 * PS3.18 Tables 10.6.3-3/4/5 plus matching keys and includefield; 'asked' =
 * only those of the level named by matching keys or includefield.
 */
type Part = 'full' | 'asked';

// PS3.18 Table 10.6.3-3: study return attributes; R ones are sent empty when unknown.
const STUDY_REQUIRED: string[] = [
  Tag.StudyDate,
  Tag.StudyTime,
  Tag.AccessionNumber,
  Tag.ReferringPhysicianName,
  Tag.PatientName,
  Tag.PatientID,
  Tag.PatientBirthDate,
  Tag.PatientSex,
  Tag.StudyInstanceUID,
  Tag.StudyID,
];
const STUDY_IF_KNOWN: string[] = [Tag.SpecificCharacterSet, Tag.TimezoneOffsetFromUTC];
const STUDY_RETURNED = new Set([...STUDY_REQUIRED, ...STUDY_IF_KNOWN]);
const STUDY_COMPUTED = new Set<string>([Tag.ModalitiesInStudy, Tag.NumberOfStudyRelatedSeries, Tag.NumberOfStudyRelatedInstances]);
// Table 10.6.3-4: series return attributes.
const SERIES_REQUIRED: string[] = [Tag.Modality, Tag.SeriesInstanceUID, Tag.SeriesNumber];
const SERIES_IF_KNOWN: string[] = [
  Tag.SeriesDescription,
  Tag.PerformedProcedureStepStartDate,
  Tag.PerformedProcedureStepStartTime,
  Tag.RequestAttributesSequence,
];
const SERIES_RETURNED = new Set([...SERIES_REQUIRED, ...SERIES_IF_KNOWN]);
// Instance attributes the index has as columns (Table 10.6.3-5); others come from the stored metadata.
const INSTANCE_COLUMNS = new Set<string>([
  Tag.SOPClassUID,
  Tag.SOPInstanceUID,
  Tag.InstanceNumber,
  Tag.Rows,
  Tag.Columns,
  Tag.BitsAllocated,
  Tag.NumberOfFrames,
  Tag.InstanceAvailability,
  Tag.RetrieveURL,
]);

function levelOf(tag: string): Level {
  if (STUDY_LEVEL.has(tag) || STUDY_COMPUTED.has(tag)) return 'study';
  if (SERIES_LEVEL.has(tag) || tag === Tag.NumberOfSeriesRelatedInstances) return 'series';
  return 'instance';
}

/** GET /studies */
export function searchStudies(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    await search(ctx, deps, 'study', { study: 'full' });
  };
}

/** GET /series and /studies/{study}/series; §10.6.3.3.2: All Series results also carry the study attributes. */
export function searchSeries(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    await search(ctx, deps, 'series', { study: ctx.params.studyUid ? 'asked' : 'full', series: 'full' });
  };
}

/** GET /instances, /studies/{study}/instances and /studies/{study}/series/{series}/instances. */
export function searchInstances(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const { studyUid, seriesUid } = ctx.params;
    await search(ctx, deps, 'instance', { study: studyUid ? 'asked' : 'full', series: seriesUid ? 'asked' : 'full', instance: 'full' });
  };
}

async function search(ctx: RouterContext, deps: AppDeps, level: Level, parts: Partial<Record<Level, Part>>): Promise<void> {
  if (!parseAccept(ctx.get('accept')).some((a) => typeMatches(a.type, 'application/dicom+json') || a.type === 'application/json')) {
    throw new ApiError(406, 'NotAcceptable', 'search results are available as application/dicom+json only');
  }
  const q = parseQidoQuery(ctx.querystring, level);
  const asked = (l: Level) => [...q.include].some((t) => levelOf(t) === l && t !== Tag.RetrieveURL);
  const has = (l: Level) => parts[l] === 'full' || (parts[l] === 'asked' && asked(l));
  const askedAny = (tags: string[]) => parts.study === 'full' || tags.some((t) => q.include.has(t));
  const caller = callerOf(ctx);
  // A de-identified view tells each result's patient apart by its study (its date shift, server/deid/profile.ts), asked for or not.
  const viewed = hasView(deps, caller);
  const spec: SearchSpec = {
    level,
    // A view that shifts dates matches date keys on the shifted dates it shows (server/deid/research.ts).
    matches: deps.research?.searchMatches(caller, q.matches) ?? q.matches,
    scope: { studyUid: ctx.params.studyUid, seriesUid: ctx.params.seriesUid },
    // limit=0 asks for no results; one row is still read for the match count (see the Warning below).
    limit: Math.max(q.limit, 1),
    offset: q.offset,
    load: {
      study: has('study') || viewed,
      studyCounts: has('study') && askedAny([...STUDY_COMPUTED]),
      series: level !== 'study' && has('series'),
      seriesCount: level !== 'study' && (parts.series === 'full' || q.include.has(Tag.NumberOfSeriesRelatedInstances)),
      metadata: level === 'instance' && (q.includeAll || [...q.include].some((t) => levelOf(t) === 'instance' && !INSTANCE_COLUMNS.has(t))),
    },
  };
  const rows = await searchIndex(deps.db, caller, spec);
  const base = dicomwebBase(ctx, deps.config);
  const page = rows.slice(0, q.limit);
  const warnings = q.unsupported.map((p) => `299 ${base}: ${UNSUPPORTED[p]}`);
  // PS3.18 §8.3.4.4: tell the client when more matches remain than were returned.
  const remaining = rows.length ? rows[0].total - q.offset - page.length : 0;
  if (remaining > 0) warnings.push(`299 ${base}: There are ${remaining} additional results that can be requested`);
  if (warnings.length) ctx.append('Warning', warnings);
  ctx.type = 'application/dicom+json';
  const plan = planOf(level, parts, q, spec, base, has('study'));
  ctx.body = present(
    deps,
    caller,
    page.map((r) => resultOf(r, plan)),
    viewed ? { set: level, studies: page.map((r) => r.studyAttributes) } : { set: level },
  );
}

const UNSUPPORTED = {
  fuzzymatching: 'The fuzzymatching parameter is not supported. Only literal matching has been performed.',
  emptyvaluematching: 'The emptyvaluematching parameter is not supported. Empty Value Matching has not been performed.',
  multiplevaluematching: 'The multiplevaluematching parameter is not supported. Multiple Value Matching has not been performed.',
} as const;

/**
 * What every result of one request carries, decided once per request: which
 * stored attributes to copy, which computed ones to add, which must be
 * present even when empty.
 */
interface Plan {
  level: Level;
  base: string;
  study?: (tag: string) => boolean;
  modalities: boolean;
  studySeries: boolean;
  studyInstances: boolean;
  series?: (tag: string) => boolean;
  seriesCount: boolean;
  instance?: (tag: string) => boolean;
  /** [tag, `{"vr":…}`] for attributes sent empty when no value is known. */
  empties: [string, string][];
}

function planOf(level: Level, parts: Partial<Record<Level, Part>>, q: QidoQuery, spec: SearchSpec, base: string, showsStudy: boolean): Plan {
  const wants = (l: Level, tag: string, always: boolean) => always || q.include.has(tag) || (q.includeAll && l === level);
  const required = new Set<string>();
  const plan: Plan = { level, base, modalities: false, studySeries: false, studyInstances: false, seriesCount: spec.load.seriesCount, empties: [] };
  if (showsStudy) {
    const full = parts.study === 'full';
    plan.study = memo((t) => wants('study', t, full && STUDY_RETURNED.has(t)));
    for (const t of STUDY_REQUIRED) if (wants('study', t, full)) required.add(t);
    if (spec.load.studyCounts) {
      plan.modalities = wants('study', Tag.ModalitiesInStudy, full);
      plan.studySeries = wants('study', Tag.NumberOfStudyRelatedSeries, full);
      plan.studyInstances = wants('study', Tag.NumberOfStudyRelatedInstances, full);
    }
  }
  if (spec.load.series) {
    const full = parts.series === 'full';
    plan.series = memo((t) => wants('series', t, full && SERIES_RETURNED.has(t)));
    for (const t of SERIES_REQUIRED) if (wants('series', t, full)) required.add(t);
  }
  // Group 0002 is file meta information, not part of the data set.
  if (level === 'instance') plan.instance = memo((t) => !t.startsWith('0002') && levelOf(t) === 'instance' && (q.includeAll || q.include.has(t)));
  // Asked-for attributes of the levels returned are present even when empty.
  const returned = { study: showsStudy, series: !!spec.load.series, instance: level === 'instance' };
  for (const t of q.include) if (returned[levelOf(t)] && t !== Tag.RetrieveURL) required.add(t);
  plan.empties = [...required].map((t) => [t, JSON.stringify({ vr: vrOf(t) })]);
  return plan;
}

function memo(f: (tag: string) => boolean): (tag: string) => boolean {
  const seen = new Map<string, boolean>();
  return (tag) => {
    let v = seen.get(tag);
    if (v === undefined) seen.set(tag, (v = f(tag)));
    return v;
  };
}

/**
 * One result object as JSON text, attributes in ascending tag order (PS3.18
 * §F.2.2). Stored attributes are spliced in as the text the index holds
 * (written by JSON.stringify, so compact and exactly what parsing and
 * re-serialising would give), never parsed unless they carry bulk data.
 */
function resultOf(r: SearchRow, plan: Plan): string {
  const out = new Attributes();
  if (plan.study) copy(out, r.studyAttributes ?? '{}', plan.study);
  if (plan.modalities) out.set(Tag.ModalitiesInStudy, values('CS', r.modalities ?? []));
  if (plan.studySeries) out.set(Tag.NumberOfStudyRelatedSeries, count(r.studySeries));
  if (plan.studyInstances) out.set(Tag.NumberOfStudyRelatedInstances, count(r.studyInstances));
  if (plan.series) copy(out, r.seriesAttributes ?? '{}', plan.series);
  if (plan.seriesCount) out.set(Tag.NumberOfSeriesRelatedInstances, count(r.seriesInstances));
  if (plan.instance) instancePart(out, r, plan.instance);
  // An empty attribute only fills a gap, so empties go last.
  for (const [t, empty] of plan.empties) out.set(t, empty, false);
  // PS3.18 Table 10.6.3-3/5: every stored instance is online and retrievable.
  out.set(Tag.InstanceAvailability, ONLINE);
  out.set(Tag.RetrieveURL, `{"vr":"UR","Value":[${JSON.stringify(retrieveUrl(plan.base, r, plan.level))}]}`);
  return out.text();
}

/** Tag → attribute text, kept in ascending tag order; stored attributes arrive nearly in order, so insertion is cheap. */
class Attributes {
  private readonly tags: string[] = [];
  private readonly texts: string[] = [];

  set(tag: string, text: string, replace = true): void {
    let i = this.tags.length;
    while (i > 0 && this.tags[i - 1] > tag) i--;
    if (i > 0 && this.tags[i - 1] === tag) {
      if (replace) this.texts[i - 1] = text;
    } else if (i === this.tags.length) {
      this.tags.push(tag);
      this.texts.push(text);
    } else {
      this.tags.splice(i, 0, tag);
      this.texts.splice(i, 0, text);
    }
  }

  /** Tags are 8 hex digits: as JSON keys they need no escaping. */
  text(): string {
    let s = '{';
    for (let i = 0; i < this.tags.length; i++) s += `${i ? ',' : ''}"${this.tags[i]}":${this.texts[i]}`;
    return `${s}}`;
  }
}

const ONLINE = JSON.stringify({ vr: 'CS', Value: ['ONLINE'] });

function count(n: number | undefined): string {
  return n === undefined || n === null ? '{"vr":"IS"}' : `{"vr":"IS","Value":[${n}]}`;
}

function instancePart(out: Attributes, r: SearchRow, take: (tag: string) => boolean): void {
  if (r.metadata) copy(out, r.metadata, take);
  out.set(Tag.SOPClassUID, values('UI', [r.sopClassUid]));
  out.set(Tag.SOPInstanceUID, values('UI', [r.sopInstanceUid]));
  out.set(Tag.InstanceNumber, values('IS', [r.instanceNumber]));
  for (const [tag, vr, v] of [
    [Tag.Rows, 'US', r.rows],
    [Tag.Columns, 'US', r.columns],
    [Tag.BitsAllocated, 'US', r.bitsAllocated],
    [Tag.NumberOfFrames, 'IS', r.numberOfFrames],
  ] as const) {
    if (v !== null && v !== undefined) out.set(tag, values(vr, [v]));
  }
}

function values(vr: string, v: unknown[]): string {
  const present = v.filter((x) => x !== null && x !== undefined);
  return JSON.stringify(present.length ? { vr, Value: present } : { vr });
}

/**
 * Copies the chosen attributes of stored DICOM JSON text, never bulk data (no
 * BulkDataURI / InlineBinary in QIDO results, at any depth). PS3.18 §F.2.2: an
 * attribute has at most one of Value, BulkDataURI and InlineBinary, after its
 * vr; so only a sequence, or an attribute whose second key is not Value, is
 * parsed, to drop it or strip its items.
 */
function copy(out: Attributes, json: string, take: (tag: string) => boolean): void {
  const attrs = storedAttributes(json);
  for (let i = 0; i < attrs.length; i += 2) {
    const tag = attrs[i];
    if (!take(tag)) continue;
    const text = attrs[i + 1];
    const sq = text.startsWith('SQ"', 7);
    if (sq ? !text.includes('"BulkDataURI"') && !text.includes('"InlineBinary"') : text.length === 11 || text.startsWith('"Value"', 11)) {
      out.set(tag, text);
      continue;
    }
    const attr = JSON.parse(text) as JsonAttribute;
    if (attr.BulkDataURI !== undefined || attr.InlineBinary !== undefined) continue;
    out.set(tag, JSON.stringify(attr.vr === 'SQ' && attr.Value ? { vr: 'SQ', Value: attr.Value.map((item) => withoutBulk(item as DicomJson)) } : attr));
  }
}

function withoutBulk(item: DicomJson): DicomJson {
  const out: DicomJson = {};
  for (const [tag, attr] of Object.entries(item ?? {})) {
    if (attr.BulkDataURI !== undefined || attr.InlineBinary !== undefined) continue;
    out[tag] = attr.vr === 'SQ' && attr.Value ? { vr: 'SQ', Value: attr.Value.map((i) => withoutBulk(i as DicomJson)) } : attr;
  }
  return out;
}

function retrieveUrl(base: string, r: SearchRow, level: Level): string {
  const study = `${base}/studies/${r.studyUid}`;
  if (level === 'study') return study;
  if (level === 'series') return `${study}/series/${r.seriesUid}`;
  return `${study}/series/${r.seriesUid}/instances/${r.sopInstanceUid}`;
}
