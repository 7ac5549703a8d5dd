import type { StoreOutcome } from '../archive.js';
import { DicomStatus } from '../errors.js';
import type { DicomJson } from '../dicom/json.js';
import { Tag } from '../dicom/tags.js';

/**
 * The HTTP status, chosen once from all outcomes (PS3.18 §10.5.3.1, Table
 * 10.5.3-1): 200 when every instance was stored without warnings; 202 when
 * some were stored and warnings or failures exist; none stored is 400 when
 * every failure is a part that could not be understood (bad syntax) and 409
 * otherwise (a conflict, or a mixture of reasons).
 */
export function storeStatus(outcomes: StoreOutcome[]): number {
  const stored = outcomes.filter((o) => o.ok);
  if (stored.length === outcomes.length) return stored.some((o) => o.ok && o.warning !== undefined) ? 202 : 200;
  if (stored.length) return 202;
  return outcomes.every((o) => !o.ok && o.reason === DicomStatus.CannotUnderstand) ? 400 : 409;
}

/** The Store Instances Response Module (PS3.18 Annex I, Table I.1-1) as DICOM JSON. */
export function storeResponse(outcomes: StoreOutcome[], base: string, targetStudy?: string): DicomJson {
  const studies = new Set(outcomes.flatMap((o) => (o.ok ? [o.studyUid] : [])));
  if (targetStudy) studies.add(targetStudy);
  const body: DicomJson = {};
  // Retrieve URL is Type 2: present, and empty when the instances span studies.
  body[Tag.RetrieveURL] = studies.size === 1 ? { vr: 'UR', Value: [`${base}/studies/${[...studies][0]}`] } : { vr: 'UR' };
  const failed = outcomes.flatMap((o) =>
    o.ok
      ? []
      : [
          {
            [Tag.ReferencedSOPClassUID]: uid(o.sopClassUid),
            [Tag.ReferencedSOPInstanceUID]: uid(o.sopInstanceUid),
            [Tag.FailureReason]: { vr: 'US', Value: [o.reason] },
          },
        ],
  );
  if (failed.length) body[Tag.FailedSOPSequence] = { vr: 'SQ', Value: failed };
  const referenced = outcomes.flatMap((o) => {
    if (!o.ok) return [];
    const item: DicomJson = {
      [Tag.ReferencedSOPClassUID]: uid(o.sopClassUid),
      [Tag.ReferencedSOPInstanceUID]: uid(o.sopInstanceUid),
      [Tag.RetrieveURL]: { vr: 'UR', Value: [`${base}/studies/${o.studyUid}/series/${o.seriesUid}/instances/${o.sopInstanceUid}`] },
    };
    if (o.warning !== undefined) item[Tag.WarningReason] = { vr: 'US', Value: [o.warning] };
    return [item];
  });
  if (referenced.length) body[Tag.ReferencedSOPSequence] = { vr: 'SQ', Value: referenced };
  return body;
}

function uid(v: string | undefined) {
  return v ? { vr: 'UI', Value: [v] } : { vr: 'UI' };
}
