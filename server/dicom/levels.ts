import type { DicomJson } from './json.js';

// Which attributes belong to the study and the series entity of the
// information model (PS3.4 §C.6.1.1.2-C.6.1.1.4 and §C.6.2.1.2: the patient
// and study keys of the Study Root model, the series keys).
export const STUDY_LEVEL = new Set([
  '00080005', '00080020', '00080030', '00080050', '00080051', '00080090', '00080096', '00080201', '00081030', '00081032',
  '00081060', '00081080', '00100010', '00100020', '00100021', '00100024', '00100030', '00100032', '00100040', '00101000',
  '00101001', '00101002', '00101010', '00101020', '00101030', '00102160', '00102180', '001021B0', '00104000', '0020000D',
  '00200010', '00321032', '00321060', '00380010',
]);

export const SERIES_LEVEL = new Set([
  '00080021', '00080031', '00080060', '00080070', '00081010', '0008103E', '00081040', '00081050', '00081070', '00081090',
  '00180015', '00185100', '0020000E', '00200011', '00200052', '00200060', '00400244', '00400245', '00400275',
]);

export function pick(json: DicomJson, tags: Set<string>): DicomJson {
  const out: DicomJson = {};
  for (const [tag, v] of Object.entries(json)) if (tags.has(tag)) out[tag] = v;
  return out;
}
