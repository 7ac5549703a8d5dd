import type { StoreOutcome } from '../archive.js';
import { DicomStatus } from '../errors.js';

// C-STORE response statuses (PS3.4 Table B.2-1, PS3.7 Annex C) for the
// archive's outcomes, with the same reasons STOW-RS gives in its
// FailureReason (PS3.18 Table I.2-2). Listed in CONFORMANCE.md.

/**
 * A C-STORE of a SOP Instance already stored with other bytes (under
 * DUPLICATE_POLICY=reject). 0x0111, STOW-RS's reason, is not a C-STORE
 * status; Table B.2-1 leaves Cxxx ("cannot understand") to the
 * implementation, and Cairn takes 0xC411 from it, as it takes 0xC409 for STOW.
 */
export const DUPLICATE_WITH_OTHER_CONTENT = 0xc411;

export function storeStatus(o: StoreOutcome): { status: number; comment?: string } {
  if (o.ok) return { status: o.warning ?? 0x0000 };
  const comment = o.message;
  switch (o.reason) {
    case DicomStatus.DuplicateSopInstance:
      return { status: DUPLICATE_WITH_OTHER_CONTENT, comment };
    default:
      // 0xA700 out of resources, 0xA900 does not match SOP class, 0xC000 and 0xC122 cannot understand, 0x0110 processing failure.
      return { status: o.reason, comment };
  }
}
