// One error type (DESIGN.md house style 4): handlers throw ApiError and only
// the error handler turns it into a status and a JSON body.
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    /** More fields of the JSON body (a 406's list of what can be asked for instead). */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

// DICOM status codes used as STOW-RS FailureReason / WarningReason values
// (PS3.4 Annex B.2.3 Table B.2-1, PS3.7 Annex C, PS3.18 §10.5.3).
export const DicomStatus = Object.freeze({
  ProcessingFailure: 0x0110,
  // Refused: Not Authorized (PS3.7 Annex C): a reader's instance outside what
  // it may store (server/archive.ts), as a C-STORE by such a peer is answered.
  NotAuthorized: 0x0124,
  DuplicateSopInstance: 0x0111,
  OutOfResources: 0xa700,
  DataSetDoesNotMatchSopClass: 0xa900,
  CannotUnderstand: 0xc000,
  TransferSyntaxNotSupported: 0xc122,
  // The instance names a study other than the target of POST /studies/{study}.
  // The standard's list (PS3.18 Annex I Table I.2-2) has no code for this and
  // allows additional ones; Cairn uses 0xC409 from the Cxxx "cannot
  // understand" range, as dcm4chee does. Listed in CONFORMANCE.md.
  StudyInstanceUidMismatch: 0xc409,
  // A SOP Instance UID that a rejection note (IHE IOCM) rejected is not
  // stored again. Not in the standard's list either; 0xA771 as dcm4chee-arc
  // answers a subsequent occurrence of a rejected object. Listed in CONFORMANCE.md.
  RejectedInstance: 0xa771,
});

/**
 * The blob store could not be reached (after its retries): a 503 that the
 * client may retry, never a 500. Thrown by blob stores, so reads answer 503
 * through the one error handler and STOW can tell it from other failures.
 */
export class StorageUnavailableError extends ApiError {
  constructor(
    what: string,
    override readonly cause: unknown,
  ) {
    super(503, 'StorageUnavailable', `the blob store is unavailable (${what}); try again later`, { 'Retry-After': '10' });
    this.name = 'StorageUnavailableError';
  }
}
