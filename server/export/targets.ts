import type { Caller } from '../access.js';
import type { Target } from '../db/lookup.js';
import type { AppDeps } from '../deps.js';
import { isValidUid } from '../dicom/uid.js';
import { ApiError } from '../errors.js';
import { studyOfSeries } from './store.js';

// The studies and series an export names, as a client sends them: a JSON
// body {"studies": ["uid", …], "series": ["uid" | {"studyUid", "seriesUid"}, …]}
// or an HTML form with the same fields as lists separated by spaces, commas
// or new lines (a series as "study/series" or its UID alone). A caller of a
// de-identified view names the pseudonymous UIDs it was shown.

/** The most studies and series one export may name. */
export const MAX_TARGETS = 1000;

/** A target to read, and the same target as the caller named it (for a 404 that never shows an original UID). */
export interface NamedTarget {
  target: Target;
  given: Target;
}

export function badTargets(message: string): ApiError {
  return new ApiError(400, 'InvalidExportTargets', message);
}

/** The targets of a request body; 400 for anything malformed, 404 (as the caller named it) for a UID it cannot see. */
export async function targetsOf(deps: Pick<AppDeps, 'db' | 'research'>, caller: Caller, body: Record<string, unknown>): Promise<NamedTarget[]> {
  const studies = list(body.studies, 'studies');
  const series = list(body.series, 'series');
  if (!studies.length && !series.length) throw badTargets('name at least one study ("studies") or series ("series") to export');
  if (studies.length + series.length > MAX_TARGETS) throw badTargets(`at most ${MAX_TARGETS} studies and series may be exported at once`);
  const view = deps.research?.viewOf(caller);
  const original = async (uid: string, missing: () => ApiError): Promise<string> => {
    if (!view) return uid;
    const o = await deps.research!.original(deps.db, view, uid);
    if (o === undefined) throw missing();
    return o;
  };
  const out: NamedTarget[] = [];
  for (const s of studies) {
    if (typeof s !== 'string' || !isValidUid(s)) throw badTargets(`studies: ${JSON.stringify(s)} is not a DICOM UID`);
    out.push({ target: { studyUid: await original(s, () => studyMissing(s)) }, given: { studyUid: s } });
  }
  for (const s of series) {
    const { studyUid, seriesUid } = seriesEntry(s);
    const seriesOriginal = await original(seriesUid, () => seriesMissing(seriesUid));
    const study = studyUid === undefined ? await studyOfSeries(deps.db, seriesOriginal) : await original(studyUid, () => seriesMissing(seriesUid));
    if (!study) throw seriesMissing(seriesUid);
    out.push({ target: { studyUid: study, seriesUid: seriesOriginal }, given: { studyUid: studyUid ?? '', seriesUid } });
  }
  return out;
}

function list(v: unknown, name: string): unknown[] {
  if (v === undefined || v === null || v === '') return [];
  if (typeof v === 'string') return v.split(/[\s,]+/).filter(Boolean);
  if (!Array.isArray(v)) throw badTargets(`${name} must be a list`);
  return v;
}

function seriesEntry(s: unknown): { studyUid?: string; seriesUid: string } {
  if (typeof s === 'string') {
    const [a, b, ...rest] = s.split('/');
    const e = b === undefined ? { seriesUid: a } : { studyUid: a, seriesUid: b };
    if (rest.length || !isValidUid(e.seriesUid) || (e.studyUid !== undefined && !isValidUid(e.studyUid)))
      throw badTargets(`series: "${s}" is not a series UID or "study UID/series UID"`);
    return e;
  }
  if (s && typeof s === 'object') {
    const { studyUid, seriesUid } = s as Record<string, unknown>;
    if (typeof seriesUid === 'string' && isValidUid(seriesUid) && (studyUid === undefined || (typeof studyUid === 'string' && isValidUid(studyUid))))
      return { studyUid: studyUid as string | undefined, seriesUid };
  }
  throw badTargets(`series: ${JSON.stringify(s)} is not a series UID or {"studyUid", "seriesUid"}`);
}

function studyMissing(uid: string): ApiError {
  return new ApiError(404, 'StudyNotFound', `study ${uid} was not found`);
}

function seriesMissing(uid: string): ApiError {
  return new ApiError(404, 'SeriesNotFound', `series ${uid} was not found`);
}

/** The 404 for a target as the caller named it. */
export function givenMissing(given: Target): ApiError {
  return given.seriesUid ? seriesMissing(given.seriesUid) : studyMissing(given.studyUid);
}
