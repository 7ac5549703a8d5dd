import { EXPLICIT_VR_BE, EXPLICIT_VR_LE, IMPLICIT_VR_LE, TRANSFER_SYNTAXES } from '../dicom/transfer-syntax.js';

// Which presentation contexts Cairn accepts (PS3.8 §9.3.2.2, PS3.7 §D.3.3.2)
// and in which transfer syntax: the conformance statement's table says the same.

export const VERIFICATION = '1.2.840.10008.1.1';
/** Storage Commitment Push Model SOP Class and its well-known instance (PS3.4 §J.3.1, §J.6.1). */
export const STORAGE_COMMITMENT = '1.2.840.10008.1.20.1';
export const STORAGE_COMMITMENT_INSTANCE = '1.2.840.10008.1.20.1.1';
export const PATIENT_ROOT = { find: '1.2.840.10008.5.1.4.1.2.1.1', move: '1.2.840.10008.5.1.4.1.2.1.2', get: '1.2.840.10008.5.1.4.1.2.1.3' } as const;
export const STUDY_ROOT = { find: '1.2.840.10008.5.1.4.1.2.2.1', move: '1.2.840.10008.5.1.4.1.2.2.2', get: '1.2.840.10008.5.1.4.1.2.2.3' } as const;

const QUERY_RETRIEVE = new Set<string>([...Object.values(PATIENT_ROOT), ...Object.values(STUDY_ROOT)]);

/**
 * Storage SOP Classes (PS3.4 Annex B.5) all sit under this root, and Cairn
 * stores any of them: an instance is kept as received, whatever its IOD.
 */
const STORAGE_ROOT = '1.2.840.10008.5.1.4.1.1.';

export function isStorageSopClass(uid: string): boolean {
  return uid.startsWith(STORAGE_ROOT);
}

/**
 * The syntax accepted from those proposed for one context, or undefined to
 * refuse it. Storage: the first compressed syntax the sender proposes that
 * Cairn stores as received (a modality proposes what it holds, so its pixel
 * data is never decoded on the way in), else Explicit VR Little Endian, then
 * Implicit, then Explicit Big Endian. A Deflated data set cannot be indexed
 * as it stands, so Deflated is not accepted. Everything else (commands and
 * identifiers only): Explicit VR Little Endian, else the default Implicit.
 */
export function acceptedSyntax(abstractSyntax: string, proposed: readonly string[]): string | undefined {
  if (isStorageSopClass(abstractSyntax)) {
    const compressed = proposed.find((ts) => {
      const t = TRANSFER_SYNTAXES.get(ts);
      return !!t?.encapsulated && t.servedAsStored;
    });
    return compressed ?? [EXPLICIT_VR_LE, IMPLICIT_VR_LE, EXPLICIT_VR_BE].find((ts) => proposed.includes(ts));
  }
  if (abstractSyntax === VERIFICATION || abstractSyntax === STORAGE_COMMITMENT || QUERY_RETRIEVE.has(abstractSyntax))
    return [EXPLICIT_VR_LE, IMPLICIT_VR_LE].find((ts) => proposed.includes(ts));
  return undefined;
}

/** Whether Cairn offers the service of this abstract syntax at all (else the context is refused as abstract syntax not supported). */
export function isSupportedAbstractSyntax(uid: string): boolean {
  return uid === VERIFICATION || uid === STORAGE_COMMITMENT || QUERY_RETRIEVE.has(uid) || isStorageSopClass(uid);
}
