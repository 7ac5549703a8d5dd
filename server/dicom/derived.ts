import { firstString, type DicomJson } from './json.js';
import { Tag } from './tags.js';

// Derived objects: what a reader makes while reading a study (a measurement
// report, a segmentation, a presentation state, a key object selection),
// stored into that study beside the images it was made from. These are the
// SOP Classes a caller that may read but not store (a clinician) may still
// store, into a study it can see (server/archive.ts). UIDs and names from
// PS3.6 Annex A; the storage SOP Classes from PS3.4 Annex B.

/** Structured Reporting (PS3.4 Annex B.5, Annex O): the general-purpose SR IODs a person writes. */
const SR: Readonly<Record<string, string>> = {
  '1.2.840.10008.5.1.4.1.1.88.11': 'Basic Text SR Storage',
  '1.2.840.10008.5.1.4.1.1.88.22': 'Enhanced SR Storage',
  '1.2.840.10008.5.1.4.1.1.88.33': 'Comprehensive SR Storage',
  '1.2.840.10008.5.1.4.1.1.88.34': 'Comprehensive 3D SR Storage',
  '1.2.840.10008.5.1.4.1.1.88.35': 'Extensible SR Storage',
};

/** Key Object Selection Document (PS3.3 A.35.4): "key images" a reader flags. */
const KOS: Readonly<Record<string, string>> = {
  '1.2.840.10008.5.1.4.1.1.88.59': 'Key Object Selection Document Storage',
};

/** Segmentation (PS3.3 A.51, A.57, A.51.5). */
const SEG: Readonly<Record<string, string>> = {
  '1.2.840.10008.5.1.4.1.1.66.4': 'Segmentation Storage',
  '1.2.840.10008.5.1.4.1.1.66.5': 'Surface Segmentation Storage',
  '1.2.840.10008.5.1.4.1.1.66.7': 'Label Map Segmentation Storage',
};

/** Presentation States (PS3.4 Annex N): how a reader displayed and annotated images. */
const PR: Readonly<Record<string, string>> = {
  '1.2.840.10008.5.1.4.1.1.11.1': 'Grayscale Softcopy Presentation State Storage',
  '1.2.840.10008.5.1.4.1.1.11.2': 'Color Softcopy Presentation State Storage',
  '1.2.840.10008.5.1.4.1.1.11.3': 'Pseudo-Color Softcopy Presentation State Storage',
  '1.2.840.10008.5.1.4.1.1.11.4': 'Blending Softcopy Presentation State Storage',
  '1.2.840.10008.5.1.4.1.1.11.5': 'XA/XRF Grayscale Softcopy Presentation State Storage',
  '1.2.840.10008.5.1.4.1.1.11.6': 'Grayscale Planar MPR Volumetric Presentation State Storage',
  '1.2.840.10008.5.1.4.1.1.11.7': 'Compositing Planar MPR Volumetric Presentation State Storage',
  '1.2.840.10008.5.1.4.1.1.11.8': 'Advanced Blending Presentation State Storage',
  '1.2.840.10008.5.1.4.1.1.11.9': 'Volume Rendering Volumetric Presentation State Storage',
  '1.2.840.10008.5.1.4.1.1.11.10': 'Segmented Volume Rendering Volumetric Presentation State Storage',
  '1.2.840.10008.5.1.4.1.1.11.11': 'Multiple Volume Rendering Volumetric Presentation State Storage',
  '1.2.840.10008.5.1.4.1.1.11.12': 'Variable Modality LUT Softcopy Presentation State Storage',
};

/**
 * Every derived-object SOP Class, by UID, with its name. SR classes that
 * devices and CAD systems produce (dose reports, CAD findings, procedure
 * logs, echo measurements) are not here: they arrive from their producers
 * with the uploader role, never from a reader.
 */
export const DERIVED_SOP_CLASSES: Readonly<Record<string, string>> = Object.freeze({ ...SR, ...KOS, ...SEG, ...PR });

/** The name of a derived-object SOP Class, or undefined when `sopClassUid` is not one. */
export function derivedClassName(sopClassUid: string): string | undefined {
  return Object.hasOwn(DERIVED_SOP_CLASSES, sopClassUid) ? DERIVED_SOP_CLASSES[sopClassUid] : undefined;
}

/** Patient ID (0010,0020) as the study row keeps it (server/db/build-rows.ts), or null. */
export function patientIdOf(dataset: DicomJson): string | null {
  return firstString(dataset, Tag.PatientID) ?? null;
}
