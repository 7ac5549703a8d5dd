import type { Caller } from './access.js';
import { dicomJsonText, type DicomJson } from './dicom/json.js';

// The one attributes seam (DESIGN.md): every DICOM JSON attribute set that
// leaves Cairn (QIDO results at each level, WADO-RS metadata) passes through
// present(). A caller gets its attributes as stored unless the Presenter in
// the app's dependencies gives it a view (a de-identification profile, say).

/** Which attribute sets are leaving: QIDO results of a level, or instances' metadata. */
export type AttributeSet = 'study' | 'series' | 'instance' | 'metadata';

/**
 * What one caller is sent instead of an attribute set: gets the set as it
 * would otherwise leave (BulkDataURIs absolute), and its study's attributes
 * when the set may not say whose it is; returns the set to send.
 */
export type AttributeView = (attrs: DicomJson, set: AttributeSet, study?: DicomJson) => DicomJson;

/** The view a caller gets, or undefined for attributes as stored (the default). */
export type Presenter = (caller: Caller) => AttributeView | undefined;

export interface Presenting {
  set: AttributeSet;
  /** The DICOMweb root that BulkDataURIs, stored relative to it, are sent under (PS3.18 §F.2.6). */
  bulkDataBase?: string;
  /** Each set's study attributes as stored (DICOM JSON text), for a view that tells patients apart (a QIDO result of a lower level may carry no patient attribute). */
  studies?: readonly (string | undefined)[];
}

/** Whether `caller` gets a view rather than attributes as stored. */
export function hasView(deps: { presenter?: Presenter }, caller: Caller): boolean {
  return deps.presenter?.(caller) !== undefined;
}

/**
 * Attribute sets, each a DICOM JSON object as text, as the JSON array sent to
 * `caller`. Attributes as stored are joined as text, never parsed: that is
 * why QIDO and metadata cost no JSON parsing per instance. Only a view gets
 * parsed objects, and its output is written in ascending tag order (§F.2.2).
 */
export function present(deps: { presenter?: Presenter }, caller: Caller, texts: string[], how: Presenting): string {
  const view = deps.presenter?.(caller);
  if (!view) {
    const joined = `[${texts.join(',')}]`;
    // The key `"BulkDataURI":"` cannot occur inside a JSON string value, whose quotes are always escaped.
    return how.bulkDataBase === undefined ? joined : joined.replaceAll('"BulkDataURI":"', `"BulkDataURI":"${how.bulkDataBase}/`);
  }
  const out = texts.map((text, i) => {
    const attrs = JSON.parse(text) as DicomJson;
    if (how.bulkDataBase !== undefined) withBase(attrs, `${how.bulkDataBase}/`);
    const study = how.studies?.[i];
    return dicomJsonText(view(attrs, how.set, study === undefined ? undefined : (JSON.parse(study) as DicomJson)));
  });
  return `[${out.join(',')}]`;
}

/** Puts `base` before every BulkDataURI, at any depth. */
function withBase(attrs: DicomJson, base: string): void {
  for (const attr of Object.values(attrs)) {
    if (attr.BulkDataURI !== undefined) attr.BulkDataURI = base + attr.BulkDataURI;
    else if (attr.vr === 'SQ' && attr.Value) for (const item of attr.Value) if (item) withBase(item as DicomJson, base);
  }
}
