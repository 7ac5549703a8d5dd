import type { RouterContext } from '@koa/router';
import type { AppDeps } from '../deps.js';
import { searchIndex, type Level, type SearchRow, type SearchSpec } from '../db/search.js';
import type { DicomJson, JsonAttribute } from '../dicom/json.js';
import { SERIES_LEVEL, STUDY_LEVEL } from '../dicom/levels.js';
import { Tag, vrOf } from '../dicom/tags.js';
import { ApiError } from '../errors.js';
import { parseAccept, typeMatches } from '../http/accept.js';
import { dicomwebBase } from '../http/base-url.js';
import { parseQidoQuery, type QidoQuery } from './qido-params.js';
import { principalOf } from './target.js';

// QIDO-RS (PS3.18 §10.6) on the six search paths of the route table.

/**
 * How much of a level each result carries: 'full' = the return attributes of
 * PS3.18 Tables 10.6.3-3/4/5 plus matching keys and includefield; 'asked' =
 * only those of the level named by matching keys or includefield.
 */
type Part = 'full' | 'asked';

// PS3.18 Table 10.6.3-3: study return attributes; R ones are sent empty when unknown.
const STUDY_REQUIRED: string[] = ['00080020', '00080030', '00080050', '00080090', '00100010', '00100020', '00100030', '00100040', '0020000D', '00200010'];
const STUDY_IF_KNOWN: string[] = [Tag.SpecificCharacterSet, Tag.TimezoneOffsetFromUTC];
const STUDY_RETURNED = new Set([...STUDY_REQUIRED, ...STUDY_IF_KNOWN]);
const STUDY_COMPUTED = new Set<string>([Tag.ModalitiesInStudy, Tag.NumberOfStudyRelatedSeries, Tag.NumberOfStudyRelatedInstances]);
// Table 10.6.3-4: series return attributes.
const SERIES_REQUIRED: string[] = [Tag.Modality, Tag.SeriesInstanceUID, Tag.SeriesNumber];
const SERIES_IF_KNOWN: string[] = [Tag.SeriesDescription, Tag.PerformedProcedureStepStartDate, Tag.PerformedProcedureStepStartTime, Tag.RequestAttributesSequence];
const SERIES_RETURNED = new Set([...SERIES_REQUIRED, ...SERIES_IF_KNOWN]);
// Instance attributes the index has as columns (Table 10.6.3-5); others come from the stored metadata.
const INSTANCE_COLUMNS = new Set<string>([Tag.SOPClassUID, Tag.SOPInstanceUID, Tag.InstanceNumber, Tag.Rows, Tag.Columns, Tag.BitsAllocated, Tag.NumberOfFrames, Tag.InstanceAvailability, Tag.RetrieveURL]);

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
  const spec: SearchSpec = {
    level,
    matches: q.matches,
    scope: { studyUid: ctx.params.studyUid, seriesUid: ctx.params.seriesUid },
    // limit=0 asks for no results; one row is still read for the match count (see the Warning below).
    limit: Math.max(q.limit, 1),
    offset: q.offset,
    load: {
      study: has('study'),
      studyCounts: has('study') && askedAny([...STUDY_COMPUTED]),
      series: level !== 'study' && has('series'),
      seriesCount: level !== 'study' && (parts.series === 'full' || q.include.has(Tag.NumberOfSeriesRelatedInstances)),
      metadata: level === 'instance' && (q.includeAll || [...q.include].some((t) => levelOf(t) === 'instance' && !INSTANCE_COLUMNS.has(t))),
    },
  };
  const rows = await searchIndex(deps.db, principalOf(ctx), spec);
  const base = dicomwebBase(ctx, deps.config);
  const page = rows.slice(0, q.limit);
  const warnings = q.unsupported.map((p) => `299 ${base}: ${UNSUPPORTED[p]}`);
  // PS3.18 §8.3.4.4: tell the client when more matches remain than were returned.
  const remaining = rows.length ? rows[0].total - q.offset - page.length : 0;
  if (remaining > 0) warnings.push(`299 ${base}: There are ${remaining} additional results that can be requested`);
  if (warnings.length) ctx.set('Warning', warnings);
  ctx.type = 'application/dicom+json';
  ctx.body = JSON.stringify(page.map((r) => resultOf(r, level, parts, q, spec, base)));
}

const UNSUPPORTED = {
  fuzzymatching: 'The fuzzymatching parameter is not supported. Only literal matching has been performed.',
  emptyvaluematching: 'The emptyvaluematching parameter is not supported. Empty Value Matching has not been performed.',
  multiplevaluematching: 'The multiplevaluematching parameter is not supported. Multiple Value Matching has not been performed.',
} as const;

/** One result object, attributes in ascending tag order (PS3.18 §F.2.2). */
function resultOf(r: SearchRow, level: Level, parts: Partial<Record<Level, Part>>, q: QidoQuery, spec: SearchSpec, base: string): DicomJson {
  const out: DicomJson = {};
  const wants = (l: Level, tag: string, always: boolean) => always || q.include.has(tag) || (q.includeAll && l === level);
  if (spec.load.study) {
    const full = parts.study === 'full';
    copy(out, r.study_attributes ?? {}, (t) => wants('study', t, full && STUDY_RETURNED.has(t)));
    for (const t of STUDY_REQUIRED) if (wants('study', t, full)) out[t] ??= { vr: vrOf(t) };
    if (spec.load.studyCounts) {
      if (wants('study', Tag.ModalitiesInStudy, full)) out[Tag.ModalitiesInStudy] = values('CS', r.modalities ?? []);
      if (wants('study', Tag.NumberOfStudyRelatedSeries, full)) out[Tag.NumberOfStudyRelatedSeries] = values('IS', [r.study_series]);
      if (wants('study', Tag.NumberOfStudyRelatedInstances, full)) out[Tag.NumberOfStudyRelatedInstances] = values('IS', [r.study_instances]);
    }
  }
  if (spec.load.series) {
    const full = parts.series === 'full';
    copy(out, r.series_attributes ?? {}, (t) => wants('series', t, full && SERIES_RETURNED.has(t)));
    for (const t of SERIES_REQUIRED) if (wants('series', t, full)) out[t] ??= { vr: vrOf(t) };
  }
  if (spec.load.seriesCount) out[Tag.NumberOfSeriesRelatedInstances] = values('IS', [r.series_instances]);
  if (level === 'instance') instancePart(out, r, q);
  // Asked-for attributes of the levels returned are present even when empty.
  const returned = { study: !!spec.load.study, series: !!spec.load.series, instance: level === 'instance' };
  for (const t of q.include) if (returned[levelOf(t)] && t !== Tag.RetrieveURL) out[t] ??= { vr: vrOf(t) };
  // PS3.18 Table 10.6.3-3/5: every stored instance is online and retrievable.
  out[Tag.InstanceAvailability] = values('CS', ['ONLINE']);
  out[Tag.RetrieveURL] = values('UR', [retrieveUrl(base, r, level)]);
  const sorted: DicomJson = {};
  for (const t of Object.keys(out).sort()) sorted[t] = out[t];
  return sorted;
}

function instancePart(out: DicomJson, r: SearchRow, q: QidoQuery): void {
  if (r.metadata) {
    const meta = JSON.parse(r.metadata) as DicomJson;
    // Group 0002 is file meta information, not part of the data set.
    copy(out, meta, (t) => !t.startsWith('0002') && levelOf(t) === 'instance' && (q.includeAll || q.include.has(t)));
  }
  out[Tag.SOPClassUID] = values('UI', [r.sop_class_uid]);
  out[Tag.SOPInstanceUID] = values('UI', [r.sop_instance_uid]);
  out[Tag.InstanceNumber] = values('IS', [r.instance_number]);
  for (const [tag, vr, v] of [[Tag.Rows, 'US', r.rows], [Tag.Columns, 'US', r.columns], [Tag.BitsAllocated, 'US', r.bits_allocated], [Tag.NumberOfFrames, 'IS', r.number_of_frames]] as const) {
    if (v !== null && v !== undefined) out[tag] = values(vr, [v]);
  }
}

function values(vr: string, v: unknown[]): JsonAttribute {
  const present = v.filter((x) => x !== null && x !== undefined);
  return present.length ? { vr, Value: present } : { vr };
}

/** Copies the chosen attributes, never bulk data (no BulkDataURI / InlineBinary in QIDO results, at any depth). */
function copy(out: DicomJson, from: DicomJson, take: (tag: string) => boolean): void {
  for (const [tag, attr] of Object.entries(from)) {
    if (!take(tag) || attr.BulkDataURI !== undefined || attr.InlineBinary !== undefined) continue;
    out[tag] = attr.vr === 'SQ' && attr.Value ? { vr: 'SQ', Value: attr.Value.map((item) => withoutBulk(item as DicomJson)) } : attr;
  }
}

function withoutBulk(item: DicomJson): DicomJson {
  const out: DicomJson = {};
  copy(out, item ?? {}, () => true);
  return out;
}

function retrieveUrl(base: string, r: SearchRow, level: Level): string {
  const study = `${base}/studies/${r.study_uid}`;
  if (level === 'study') return study;
  if (level === 'series') return `${study}/series/${r.series_uid}`;
  return `${study}/series/${r.series_uid}/instances/${r.sop_instance_uid}`;
}
