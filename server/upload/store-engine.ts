import type { IncomingMessage } from 'node:http';
import type multer from '@koa/multer';
import type { Caller } from '../access.js';
import { storeInstance, type ArchiveContext, type StoreOutcome } from '../archive.js';

/** What the upload page shows for one file. */
export interface UploadResult {
  name: string;
  status: 'stored' | 'duplicate' | 'rejected';
  reason?: string;
  /** The DICOM failure reason in hex (`0xC000`), when rejected. */
  code?: string;
  studyUid?: string;
}

/**
 * A multer storage engine that streams each uploaded file straight into
 * storeInstance(), the store path STOW-RS uses: nothing is buffered whole,
 * nothing goes through temporary files, and what is not DICOM fails in the
 * parser and is never stored (storeInstance deletes its blob). Who may
 * upload is the route guard's decision, as for STOW (and the archive checks
 * the caller again); labels come from the same ingest rules.
 */
export function storeEngine(store: ArchiveContext, caller: Caller): multer.StorageEngine {
  return {
    _handleFile(_req: IncomingMessage, file, cb) {
      // Read without destroying on an early return: a file the parser gives up
      // on is drained below so the form's next file can be read.
      const body = file.stream.iterator({ destroyOnReturn: false });
      storeInstance(store, caller, body).then(
        (outcome) => {
          file.stream.resume();
          cb(null, { outcome });
        },
        (err) => cb(err),
      );
    },
    // A stored instance stays stored when a later part of the form fails, as with STOW.
    _removeFile(_req, _file, cb) {
      cb(null);
    },
  };
}

export function resultOf(name: string, o: StoreOutcome): UploadResult {
  if (o.ok) return { name, status: o.duplicate ? 'duplicate' : 'stored', studyUid: o.studyUid };
  return { name, status: 'rejected', reason: o.message, code: `0x${o.reason.toString(16).toUpperCase().padStart(4, '0')}` };
}
