import type { RouterContext } from '@koa/router';
import type { Caller } from '../access.js';
import { archiveContext, failAlone, receiveInstance, recordOutcomes, type StoreOutcome } from '../archive.js';
import type { AppDeps } from '../deps.js';
import { ApiError, DicomStatus, StorageUnavailableError } from '../errors.js';
import { callerOf } from '../http/guard.js';
import { dicomwebBase } from '../http/base-url.js';
import { MultipartReader, parseMediaType } from '../http/multipart.js';
import { storeJsonParts } from './stow-json.js';
import { storeResponse, storeStatus } from './store-response.js';

const IN_FLIGHT = 8;
/** The multipart types STOW-RS takes: instances, or metadata (JSON or XML) with bulk data (PS3.18 §10.5.1.4). */
const STOW_TYPES = ['application/dicom', 'application/dicom+json', 'application/dicom+xml'];

/** STOW-RS (PS3.18 §10.5): POST /studies and /studies/{study}, multipart/related of application/dicom. */
export function store(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const ct = parseMediaType(ctx.get('content-type') || '');
    if (ct.type !== 'multipart/related') {
      throw new ApiError(
        415,
        'UnsupportedMediaType',
        `Content-Type must be multipart/related; type="application/dicom", not "${ctx.get('content-type') || '(none)'}"`,
      );
    }
    const partType = ct.params.type?.toLowerCase();
    if (partType !== undefined && !STOW_TYPES.includes(partType)) {
      const types = `${STOW_TYPES[0]}, or ${STOW_TYPES.slice(1).join(' or ')} with bulk data`;
      throw new ApiError(415, 'UnsupportedMediaType', `multipart/related type "${ct.params.type}" is not supported; only ${types}`);
    }
    if (!ct.params.boundary) throw new ApiError(400, 'MalformedMultipart', 'multipart/related Content-Type has no boundary parameter');
    const studyUid = ctx.params.studyUid;
    const reader = new MultipartReader(ctx.req, ct.params.boundary);
    // PS3.18 §10.5.1.4: metadata and bulk data, made into instances here.
    const { outcomes, unread } =
      partType !== undefined && partType !== 'application/dicom'
        ? { outcomes: await storeJsonParts(deps, callerOf(ctx), reader, studyUid, partType), unread: undefined }
        : await storeParts(deps, callerOf(ctx), reader, studyUid);
    if (!outcomes.length) throw new ApiError(400, 'MalformedMultipart', 'the request holds no parts');
    recordOutcomes(outcomes, deps.log);
    deps.metrics?.stowOutcomes(outcomes);
    noteRejections(ctx, outcomes);
    noteDerived(ctx, outcomes);
    if (unread) ctx.append('Warning', `299 ${dicomwebBase(ctx, deps.config)}: ${unread.message}`);
    warnRefused(ctx, dicomwebBase(ctx, deps.config), outcomes);
    // Nothing stored because the blob store is down: a 503 the client can
    // retry as a whole (nothing was indexed), not a 409 that reads as "your data is wrong".
    const down = outcomes.find((o) => !o.ok && o.storageUnavailable);
    if (down && !outcomes.some((o) => o.ok)) throw new StorageUnavailableError('the instances could not be written', undefined);
    ctx.status = storeStatus(outcomes);
    ctx.type = 'application/dicom+json';
    ctx.body = storeResponse(outcomes, dicomwebBase(ctx, deps.config), studyUid);
  };
}

/**
 * Stores each part in turn. The next part is read while earlier ones are
 * still being written (at most IN_FLIGHT blob writes at once, so memory stays
 * bounded); the outcomes come back in part order. The index rows of the
 * instances whose blobs are durable wait with the indexer (corked) and are
 * written together, up to 32 in one statement and one commit, none waiting
 * longer than 100 ms (db/batch-index.ts), each still succeeding or failing
 * alone.
 *
 * A request holds at most MAX_STOW_PARTS parts: each costs work of its own
 * (a parse, a blob, an index row, a line of the answer) however few its
 * bytes. The parts after that many are not read as parts at all. They are
 * answered together by one failure (0xA700, out of resources) and a Warning,
 * not by a 413: the parts before them are already stored, and PS3.18
 * §10.5.3 keeps 4xx for requests of which nothing was stored, so the status
 * is chosen from all outcomes as always (202 when some were stored).
 */
async function storeParts(
  deps: AppDeps,
  caller: Caller,
  reader: MultipartReader,
  studyUid: string | undefined,
): Promise<{ outcomes: StoreOutcome[]; unread?: StoreOutcome & { ok: false } }> {
  const pending: Promise<StoreOutcome>[] = [];
  const written: Promise<void>[] = [];
  const ctx = archiveContext(deps);
  const max = deps.config.maxStowParts;
  let unread: (StoreOutcome & { ok: false }) | undefined;
  ctx.indexer?.cork();
  try {
    for (let part = await reader.next(); part; part = await reader.next()) {
      if (pending.length === max) {
        await reader.discardRest();
        unread = {
          ok: false,
          reason: DicomStatus.OutOfResources,
          message: `the request holds more than ${max} parts (MAX_STOW_PARTS); the parts after part ${max} were not read`,
        };
        break;
      }
      const type = parseMediaType(part.headers['content-type'] ?? 'application/dicom').type;
      if (type !== 'application/dicom') {
        pending.push(Promise.resolve({ ok: false, reason: DicomStatus.CannotUnderstand, message: `part media type ${type} is not application/dicom` }));
        continue;
      }
      if (written.length >= IN_FLIGHT) await written[written.length - IN_FLIGHT];
      const received = await receiveInstance(ctx, caller, part.body, studyUid);
      pending.push(failAlone(received.outcome));
      written.push(received.written);
    }
    await Promise.all(written);
  } catch (err) {
    ctx.indexer?.uncork();
    await Promise.allSettled(pending);
    throw err;
  } finally {
    ctx.indexer?.uncork();
  }
  const outcomes = await Promise.all(pending);
  if (unread) outcomes.push(unread);
  return { outcomes, unread };
}

/** How many refused instances get a Warning of their own: the response's header must stay small. */
const REFUSALS_EXPLAINED = 10;

/**
 * The Failed SOP Sequence holds a code, not words: why a reader's instance
 * was refused goes in a Warning header field, in the `299 <service>: <text>`
 * form PS3.18 uses for such explanations (as in §11.6.3.2).
 */
function warnRefused(ctx: RouterContext, base: string, outcomes: readonly StoreOutcome[]): void {
  const refused = outcomes.filter((o) => !o.ok && o.refused) as (StoreOutcome & { ok: false })[];
  for (const o of refused.slice(0, REFUSALS_EXPLAINED)) ctx.append('Warning', `299 ${base}: ${o.sopInstanceUid ?? 'an instance'}: ${o.message}`);
  if (refused.length > REFUSALS_EXPLAINED) ctx.append('Warning', `299 ${base}: ${refused.length - REFUSALS_EXPLAINED} more instances were refused`);
}

/** The derived objects a reader stored (server/archive.ts) are named in the audit row, with their SOP Class. */
function noteDerived(ctx: RouterContext, outcomes: readonly StoreOutcome[]): void {
  const derived = outcomes.flatMap((o) =>
    o.ok && o.derived ? [{ sopInstanceUid: o.sopInstanceUid, sopClass: o.derived, seriesUid: o.seriesUid, studyUid: o.studyUid }] : [],
  );
  if (derived.length && ctx.state.audit) ctx.state.audit.detail = { ...ctx.state.audit.detail, derived };
}

/** A stored rejection note (IHE IOCM) is named in the audit row with its title; the rejected UIDs are among its touched ones. */
function noteRejections(ctx: RouterContext, outcomes: readonly StoreOutcome[]): void {
  const notes = outcomes.flatMap((o) => (o.ok && o.rejection ? [{ kos: o.sopInstanceUid, code: o.rejection.code, rejected: o.rejection.rejected }] : []));
  if (notes.length && ctx.state.audit) ctx.state.audit.detail = { ...ctx.state.audit.detail, rejections: notes };
}
