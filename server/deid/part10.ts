import type { DicomJson } from '../dicom/json.js';
import { rewritePart10 } from '../dicom/rewrite-part10.js';
import type { ScanOptions } from '../dicom/scan.js';
import { withheldReason, type Deidentifier } from './profile.js';

/** An instance a de-identified view does not serve, with the reason it gives. */
export class WithheldError extends Error {}

const SOP_INSTANCE_UID = '00080018';

/**
 * A Part-10 instance de-identified by the same table as its attributes:
 * the data set through Deidentifier.apply, pixel data and other large
 * binary values kept when the profile keeps their attribute, the Media
 * Storage SOP Instance UID (0002,0003) replaced like the SOP Instance UID.
 * Throws WithheldError for an instance the profile withholds.
 */
export function deidentifyPart10(bytes: Buffer, d: Deidentifier, opts: ScanOptions): Promise<Buffer> {
  return rewritePart10(
    bytes,
    {
      rewrite(attrs: DicomJson) {
        const reason = withheldReason(attrs, d.options);
        if (reason) throw new WithheldError(reason);
        return d.apply(attrs);
      },
      keep: (tag) => keptAsStored(d, tag),
      meta: (attrs): Record<string, string> => {
        const uid = attrs[SOP_INSTANCE_UID]?.Value?.[0];
        return typeof uid === 'string' ? { '00020003': d.uid(uid) } : {};
      },
    },
    opts,
  );
}

/** A standard attribute the profile passes unchanged (not in Table E.1-1, or K); private ones never. */
export function keptAsStored(d: Deidentifier, tag: string): boolean {
  if (Number.parseInt(tag[3], 16) % 2 === 1) return false;
  const action = d.actionFor(tag);
  return action === undefined || action === 'K';
}
