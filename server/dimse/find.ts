import dcmjs from 'dcmjs';
import dimse from 'dcmjs-dimse';
import { permits, type Caller } from '../access.js';
import { recordAudit } from '../audit.js';
import { searchIndex, type Level, type SearchRow, type SearchSpec } from '../db/search.js';
import { KEYS, parseQidoQuery } from '../dicomweb/qido-params.js';
import type { DicomJson, JsonAttribute } from '../dicom/json.js';
import { vrOf } from '../dicom/tags.js';
import { ApiError } from '../errors.js';
import { present } from '../present.js';
import { originalQueryText } from '../deid/pseudonyms.js';
import { DEIDENTIFIED_REFUSAL, NOT_AUTHORIZED, readsDeidentified } from './deidentified.js';
import type { CairnScp, DimseDeps } from './listener.js';
import { PATIENT_ROOT } from './negotiate.js';

// C-FIND SCP (PS3.4 §C.4.1) at Patient Root and Study Root. The identifier
// becomes the same checked query QIDO-RS builds from its parameters
// (server/dicomweb/qido-params.ts), so matching (wildcards, ranges, UID
// lists, sequence keys, the case rules of PS3.4 §C.2.2.2) is QIDO's to the
// letter, over the same scoped search (server/db/search.ts): a study the
// calling AE may not see matches nothing. Each match leaves through
// present() as a pending response as soon as its page is read. A caller of a
// de-identified view is matched as QIDO matches it (server/deid/pseudonyms.ts),
// its page held until the pseudonyms it shows are recorded.

const { Dataset, constants } = dimse;
const { Status } = constants;
const { DicomMetaDictionary } = dcmjs.data;

type FindRequest = InstanceType<typeof dimse.requests.CFindRequest>;

const QUERY_RETRIEVE_LEVEL = '00080052';
const RETRIEVE_AE_TITLE = '00080054';
const SPECIFIC_CHARACTER_SET = '00080005';
const PATIENT_ID = '00100020';
const STUDY_UID = '0020000D';
const SERIES_UID = '0020000E';
const SOP_INSTANCE_UID = '00080018';
const SOP_CLASS_UID = '00080016';
const INSTANCE_NUMBER = '00200013';
const MODALITIES_IN_STUDY = '00080061';
const STUDY_SERIES = '00201206';
const STUDY_INSTANCES = '00201208';
const SERIES_INSTANCES = '00201209';
const PATIENT_STUDIES = '00201200';
const PATIENT_SERIES = '00201202';
const PATIENT_INSTANCES = '00201204';

/** PS3.4 §C.6.1.1.1, §C.6.2.1.1: the levels of each information model, as Cairn's search levels. */
const LEVELS: Record<string, Level | 'patient'> = { PATIENT: 'patient', STUDY: 'study', SERIES: 'series', IMAGE: 'instance' };
/** The unique key of each level (PS3.4 Tables C.6-1 to C.6-4, C.6-5 to C.6-7). */
const UNIQUE: Record<Level | 'patient', string[]> = {
  patient: [PATIENT_ID],
  study: [STUDY_UID],
  series: [STUDY_UID, SERIES_UID],
  instance: [STUDY_UID, SERIES_UID, SOP_INSTANCE_UID],
};
const PAGE = 200;

/** A failed identifier: 0xA900 (PS3.4 Table C.4-1, identifier does not match SOP Class) with what was wrong. */
class IdentifierError extends Error {}

/** A query from a C-FIND identifier: the level, QIDO's checked query string, and the keys to return. */
export interface FindQuery {
  level: Level | 'patient';
  querystring: string;
  /** Every attribute of the identifier (PS3.4 §C.2.2.1.2: each is returned, empty when unknown). */
  returnKeys: string[];
  /** The identifier's Specific Character Set, when it has one. */
  charset?: string;
}

/** Translates a C-FIND identifier (DICOM JSON) into a query, or throws IdentifierError. */
export function findQuery(sopClass: string, identifier: DicomJson): FindQuery {
  const levelName = text(identifier[QUERY_RETRIEVE_LEVEL]).trim().toUpperCase();
  const level = LEVELS[levelName];
  if (!level) throw new IdentifierError(`Query/Retrieve Level "${levelName}" is not PATIENT, STUDY, SERIES or IMAGE`);
  if (level === 'patient' && sopClass !== PATIENT_ROOT.find) throw new IdentifierError('the Study Root model has no PATIENT level');
  const searchLevel: Level = level === 'patient' ? 'study' : level;
  const pairs: string[] = [];
  const returnKeys: string[] = [];
  for (const [tag, attr] of Object.entries(identifier)) {
    if (tag.startsWith('0000') || tag.startsWith('0002') || tag === QUERY_RETRIEVE_LEVEL || tag === SPECIFIC_CHARACTER_SET) continue;
    returnKeys.push(tag);
    if (attr.vr === 'SQ') {
      // PS3.4 §C.2.2.2.6: a sequence with one item holds keys matched within it.
      const item = (attr.Value?.[0] ?? {}) as DicomJson;
      for (const [inner, innerAttr] of Object.entries(item)) {
        const value = text(innerAttr);
        if (value !== '' && KEYS[`${tag}.${inner}`]) pairs.push(`${tag}.${inner}=${encodeURIComponent(value)}`);
      }
      continue;
    }
    const value = text(attr);
    // A key Cairn does not match on (or one below the query level) is a return key only: universal matching.
    const key = KEYS[tag];
    if (value === '' || !key || depth(key.level) > depth(searchLevel)) continue;
    pairs.push(`${tag}=${encodeURIComponent(value)}`);
  }
  const charset = text(identifier[SPECIFIC_CHARACTER_SET]) || undefined;
  return { level, querystring: pairs.join('&'), returnKeys, charset };
}

function depth(l: Level): number {
  return l === 'study' ? 0 : l === 'series' ? 1 : 2;
}

/**
 * A value as the text QIDO would get: values joined by backslash (PS3.5
 * §6.4), person names in their "=" form, without the padding PS3.5 Table
 * 6.2-1 calls insignificant (trailing spaces always, leading ones where the
 * VR says so).
 */
function text(attr: JsonAttribute | undefined): string {
  const values = attr?.Value ?? [];
  const leading = attr !== undefined && LEADING_INSIGNIFICANT.has(attr.vr);
  return values
    .map((v) => {
      if (v === null || v === undefined) return '';
      let s: string;
      if (typeof v === 'object') {
        const pn = v as Record<string, string>;
        s = [pn.Alphabetic ?? '', pn.Ideographic ?? '', pn.Phonetic ?? ''].join('=').replace(/=+$/, '');
      } else s = String(v);
      s = s.replace(/[ \0]+$/, '');
      return leading ? s.trimStart() : s;
    })
    .join('\\');
}

const LEADING_INSIGNIFICANT = new Set(['AE', 'AS', 'CS', 'DA', 'DS', 'DT', 'IS', 'TM', 'UI']);

export function findService(deps: DimseDeps, scp: CairnScp) {
  const running = new Map<number, { cancelled: boolean }>();

  async function run(request: FindRequest, state: { cancelled: boolean }): Promise<void> {
    const peer = scp.peer;
    const respond = (status: number, dataset?: DicomJson, comment?: string) => {
      const r = dimse.responses.CFindResponse.fromRequest(request);
      r.setAffectedSopClassUid(request.getAffectedSopClassUid());
      r.setStatus(status);
      if (comment) r.setErrorComment(comment.slice(0, 64));
      if (dataset) r.setDataset(new Dataset(DicomMetaDictionary.naturalizeDataset(dataset), request.getDataset()?.getTransferSyntaxUid()));
      scp.respond(request, r);
    };
    if (!peer) return respond(Status.ProcessingFailure);
    const caller = peer.caller();
    if (!permits(caller.principal, 'search')) {
      await audit(caller, 'denied', {});
      return respond(Status.NotAuthorized, undefined, 'the calling AE may not search');
    }
    // A caller of a de-identified view is matched on what its view shows (below); one whose view
    // Cairn cannot match on would match on original identifiers, and is refused.
    const view = deps.research?.viewOf(caller);
    if (!view && readsDeidentified(deps, caller)) {
      await audit(caller, 'denied', { reason: 'de-identified view' });
      return respond(NOT_AUTHORIZED, undefined, DEIDENTIFIED_REFUSAL);
    }
    const sopClass = request.getAffectedSopClassUid();
    let q: FindQuery;
    let spec: SearchSpec;
    try {
      const identifier = DicomMetaDictionary.denaturalizeDataset(request.getDataset()?.getElements() ?? {}) as DicomJson;
      q = findQuery(sopClass, identifier);
      const level: Level = q.level === 'patient' ? 'study' : q.level;
      // As QIDO asks it for this caller (server/deid/pseudonyms.ts): pseudonyms to originals; a key on
      // what the view removes or replaces (an original name, ID or UID) matches nothing.
      const querystring = view ? await originalQueryText(deps, view, q.querystring) : q.querystring;
      if (querystring === false) {
        await audit(caller, 'success', { level: q.level, matches: 0 });
        return respond(Status.Success);
      }
      const parsed = parseQidoQuery(querystring, level);
      spec = {
        level,
        // Dates the view shifts are matched on the shifted dates it shows (server/deid/research.ts).
        matches: deps.research?.searchMatches(caller, parsed.matches) ?? parsed.matches,
        scope: {},
        limit: PAGE,
        offset: 0,
        load: {
          study: true,
          studyCounts: q.returnKeys.some((t) => [MODALITIES_IN_STUDY, STUDY_SERIES, STUDY_INSTANCES, PATIENT_SERIES, PATIENT_INSTANCES].includes(t)),
          series: level !== 'study',
          seriesCount: level !== 'study' && q.returnKeys.includes(SERIES_INSTANCES),
          metadata: level === 'instance',
        },
      };
    } catch (err) {
      if (err instanceof IdentifierError || err instanceof ApiError) {
        await audit(caller, 'invalid', { error: err.message });
        return respond(0xa900, undefined, err.message);
      }
      throw err;
    }
    const patients = new Map<string, { attrs: DicomJson; study?: string; studies: number; series: number; instances: number }>();
    let matches = 0;
    /** Pending responses held until the pseudonyms they show are written, so that a follow-up by one resolves. */
    const held: DicomJson[] = [];
    const send = async (shown: DicomJson) => {
      respond(Status.Pending, shown);
      matches++;
      // Lets a C-CANCEL that arrived meanwhile be read before the next response (PS3.7 §9.3.2.3).
      await scp.flushed();
    };
    const release = async () => {
      if (!view || !held.length) return;
      await deps.research?.flush(deps.db, caller);
      for (const shown of held.splice(0)) {
        if (state.cancelled) break;
        await send(shown);
      }
    };
    for (;;) {
      const rows = await searchIndex(deps.db, caller, spec);
      for (const row of rows) {
        if (state.cancelled) break;
        const attrs = merged(row);
        if (q.level === 'patient') {
          const id = JSON.stringify([attrs[PATIENT_ID]?.Value ?? [], attrs['00100021']?.Value ?? []]);
          const p = patients.get(id) ?? { attrs, study: row.studyAttributes, studies: 0, series: 0, instances: 0 };
          p.studies++;
          p.series += row.studySeries ?? 0;
          p.instances += row.studyInstances ?? 0;
          patients.set(id, p);
          continue;
        }
        const shown = answer(deps, caller, q, attrs, row, row.studyAttributes);
        if (view) held.push(shown);
        else await send(shown);
      }
      await release();
      if (state.cancelled || rows.length < PAGE) break;
      spec = { ...spec, offset: spec.offset + PAGE };
    }
    if (q.level === 'patient' && !state.cancelled) {
      for (const p of patients.values()) {
        if (state.cancelled) break;
        const counts: DicomJson = {
          [PATIENT_STUDIES]: { vr: 'IS', Value: [p.studies] },
          [PATIENT_SERIES]: { vr: 'IS', Value: [p.series] },
          [PATIENT_INSTANCES]: { vr: 'IS', Value: [p.instances] },
        };
        const shown = answer(deps, caller, q, { ...patientOnly(p.attrs), ...counts }, undefined, p.study);
        if (view) held.push(shown);
        else await send(shown);
        if (held.length >= PAGE) await release();
      }
      await release();
    }
    await audit(caller, 'success', { level: q.level, matches, ...(state.cancelled ? { cancelled: true } : {}) });
    // PS3.4 §C.4.1.3.1: a cancelled C-FIND ends with Cancel (0xFE00), not Success.
    respond(state.cancelled ? Status.Cancel : Status.Success);
  }

  function audit(caller: Caller, outcome: string, detail: Record<string, unknown>): Promise<void> {
    return recordAudit(deps.audit, caller, 'search', outcome, detail);
  }

  return {
    handle(request: FindRequest): void {
      const state = { cancelled: false };
      const id = request.getMessageId();
      running.set(id, state);
      run(request, state)
        .catch((err: unknown) => {
          deps.log.error({ err }, 'C-FIND failed');
          const r = dimse.responses.CFindResponse.fromRequest(request);
          r.setAffectedSopClassUid(request.getAffectedSopClassUid());
          r.setStatus(0xc000);
          scp.respond(request, r);
        })
        .finally(() => running.delete(id));
    },
    /** C-CANCEL of one request, or of all (the association ended). */
    cancel(messageId?: number): void {
      for (const [id, state] of running) if (messageId === undefined || id === messageId) state.cancelled = true;
    },
  };
}

/** The stored attributes of a match, levels below overriding those above (they never share a tag). */
function merged(row: SearchRow): DicomJson {
  return {
    ...(row.studyAttributes ? (JSON.parse(row.studyAttributes) as DicomJson) : {}),
    ...(row.seriesAttributes ? (JSON.parse(row.seriesAttributes) as DicomJson) : {}),
    ...(row.metadata ? (JSON.parse(row.metadata) as DicomJson) : {}),
  };
}

function patientOnly(attrs: DicomJson): DicomJson {
  const out: DicomJson = {};
  for (const [t, a] of Object.entries(attrs)) if (t.startsWith('0010') || t === SPECIFIC_CHARACTER_SET) out[t] = a;
  return out;
}

/**
 * One pending response's identifier: every key asked for (empty when the
 * match has no value, PS3.4 §C.2.2.1.2), the unique keys of the level and
 * above, the level itself and where to retrieve it (PS3.4 §C.4.1.2.3.1),
 * passed through the attributes seam.
 */
function answer(deps: DimseDeps, caller: Caller, q: FindQuery, attrs: DicomJson, row?: SearchRow, study?: string): DicomJson {
  const computed: DicomJson = {};
  if (row) {
    if (row.modalities) computed[MODALITIES_IN_STUDY] = { vr: 'CS', Value: row.modalities };
    if (row.studySeries !== undefined) computed[STUDY_SERIES] = { vr: 'IS', Value: [row.studySeries] };
    if (row.studyInstances !== undefined) computed[STUDY_INSTANCES] = { vr: 'IS', Value: [row.studyInstances] };
    if (row.seriesInstances !== undefined) computed[SERIES_INSTANCES] = { vr: 'IS', Value: [row.seriesInstances] };
    if (row.sopInstanceUid) computed[SOP_INSTANCE_UID] = { vr: 'UI', Value: [row.sopInstanceUid] };
    if (row.sopClassUid) computed[SOP_CLASS_UID] = { vr: 'UI', Value: [row.sopClassUid] };
    if (row.instanceNumber !== undefined && row.instanceNumber !== null) computed[INSTANCE_NUMBER] = { vr: 'IS', Value: [row.instanceNumber] };
  }
  const all = { ...attrs, ...computed };
  const out: DicomJson = {};
  for (const tag of new Set([...q.returnKeys, ...UNIQUE[q.level]])) {
    const a = all[tag];
    // Bulk data never leaves in a C-FIND response; a sequence is returned whole.
    out[tag] = a && a.BulkDataURI === undefined && a.InlineBinary === undefined ? a : { vr: a?.vr ?? vrOf(tag) };
  }
  const set = q.level === 'patient' ? 'study' : q.level;
  // A view tells the match's patient apart by its study's attributes (its date shift), returned or not.
  const shown = JSON.parse(present(deps, caller, [JSON.stringify(out)], { set, studies: [study] }))[0] as DicomJson;
  shown[QUERY_RETRIEVE_LEVEL] = { vr: 'CS', Value: [q.level === 'instance' ? 'IMAGE' : q.level.toUpperCase()] };
  shown[RETRIEVE_AE_TITLE] = { vr: 'AE', Value: [deps.config.dimse.aeTitle] };
  // Stored values are Unicode text; the response says so (PS3.5 §6.1.2.5.3: ISO_IR 192 is UTF-8).
  shown[SPECIFIC_CHARACTER_SET] = { vr: 'CS', Value: ['ISO_IR 192'] };
  return shown;
}
