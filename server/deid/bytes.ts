import type { Caller } from '../access.js';
import { findMetadata, type StoredInstance } from '../db/lookup.js';
import type { AppDeps } from '../deps.js';
import type { DicomJson } from '../dicom/json.js';
import { transferSyntax } from '../dicom/transfer-syntax.js';
import { ApiError } from '../errors.js';
import type { Acceptable } from '../http/accept.js';
import type { OutPart } from '../http/multipart.js';
import type { Reply } from '../http/reply.js';
import { abilityOf, conversionFor, transcodedInstance, type Asked, type Conversion } from '../retrieve.js';
import { MAX_CONVERT_BYTES } from '../transcode.js';
import { deidentifyPart10, keptAsStored, WithheldError } from './part10.js';
import { withheldReason } from './profile.js';
import type { DeidView } from './research.js';

// The bytes seam's case for a de-identified view (server/retrieve.ts): whole
// instances rewritten by the view's profile; frames and bulk data, which the
// profile does not change, served as stored once the instance is known not
// to be withheld and the element to be one the profile keeps.

type Deps = Pick<AppDeps, 'blobs' | 'db' | 'config' | 'research'> & Partial<Pick<AppDeps, 'pixels'>>;

/** What a de-identified caller gets for `asked`; `asStored` is the seam's own answer for bytes the profile keeps. */
export async function deidentifiedBytes(
  deps: Deps,
  view: DeidView,
  caller: Caller,
  accepts: Acceptable[],
  asked: Asked,
  asStored: () => Promise<Reply>,
): Promise<Reply> {
  if (asked.kind === 'instances') return instances(deps, view, caller, accepts, asked);
  const row = asked.row;
  const texts = await findMetadata(deps.db, caller, row);
  const reason = texts.length ? withheldReason(JSON.parse(texts[0]) as DicomJson, view.deidentifier.options) : undefined;
  if (reason) throw withheld(view, row.sopInstanceUid, reason);
  if (asked.kind === 'bulk' && !keptAsStored(view.deidentifier, asked.tag))
    throw new ApiError(404, 'BulkDataNotFound', `instance ${view.deidentifier.uid(row.sopInstanceUid)} has no bulk data element ${asked.tag}`);
  return asStored();
}

async function instances(deps: Deps, view: DeidView, caller: Caller, accepts: Acceptable[], asked: Extract<Asked, { kind: 'instances' }>): Promise<Reply> {
  const d = view.deidentifier;
  const opts = {
    bulkThreshold: deps.config.bulkDataThreshold,
    maxHeaderBytes: deps.config.maxHeaderBytes,
    maxSequenceDepth: deps.config.maxSequenceDepth,
    maxDataElements: deps.config.maxDataElements,
  };
  const parts: OutPart[] = [];
  const held: string[] = [];
  const can = abilityOf(deps.pixels);
  const chosen: Conversion[] = [];
  for (const r of asked.rows) {
    const c = conversionFor(accepts, transferSyntax(r.transferSyntaxUid), 'instance', can);
    if (!c)
      throw new ApiError(
        406,
        'NotAcceptable',
        `instance ${d.uid(r.sopInstanceUid)} is stored as ${r.transferSyntaxUid}, which Cairn cannot make into what the Accept header allows`,
      );
    if (c.kind === 'transcode' && !c.fallback && r.size > MAX_CONVERT_BYTES)
      throw new ApiError(
        406,
        'TooLargeToTranscode',
        `instance ${d.uid(r.sopInstanceUid)} is larger than Cairn transcodes (${MAX_CONVERT_BYTES} bytes); ask for its frames`,
      );
    chosen.push(c);
  }
  for (const [i, r] of asked.rows.entries()) {
    let bytes = await deidentified(deps, d, r, opts, held);
    if (!bytes) continue;
    // The same transfer syntax as WADO-RS gives anyone else (PS3.18 §8.7.3.5.2):
    // the profile rewrites attributes, then the pixel data is transcoded.
    const c = chosen[i];
    let contentType = c.contentType;
    if (c.kind === 'transcode') {
      const made = r.size > MAX_CONVERT_BYTES ? null : await transcodedInstance(bytes, c, deps);
      if (made) bytes = made;
      else contentType = `application/dicom; transfer-syntax=${r.transferSyntaxUid}`;
    }
    deps.research?.note(caller, view, r);
    const out = bytes;
    parts.push({ contentType, length: out.length, body: () => out, fill: async (into) => out.copy(into) });
  }
  if (!parts.length) throw withheld(view, asked.rows[0].sopInstanceUid, held[0]);
  const headers: Record<string, string> = {};
  if (held.length) headers.Warning = `299 cairn "${held.length} instance(s) withheld from this de-identified view: they may carry burned-in identifying text"`;
  if (asked.one && parts.length === 1 && !chosen[0].multipart) return { multipart: false, part: { ...parts[0], length: parts[0].length! }, headers };
  return { multipart: true, partType: 'application/dicom', parts, headers };
}

async function deidentified(deps: Deps, d: DeidView['deidentifier'], r: StoredInstance, opts: Parameters<typeof deidentifyPart10>[2], held: string[]) {
  try {
    return await deidentifyPart10(await deps.blobs.read(r.blobKey, r.size), d, opts);
  } catch (err) {
    if (!(err instanceof WithheldError)) throw err;
    held.push(err.message);
    return undefined;
  }
}

/** The answer for an instance the view withholds: it exists, and is not served to this caller, and why. */
function withheld(view: DeidView, sopInstanceUid: string, reason: string | undefined): ApiError {
  return new ApiError(
    403,
    'InstanceWithheld',
    `instance ${view.deidentifier.uid(sopInstanceUid)} is withheld from this de-identified view: ${reason ?? 'it may carry burned-in identifying text'}`,
  );
}

/**
 * The instances whose pixels a view may show as images (rendered, thumbnails):
 * those it does not withhold, and the 403 for the first it does.
 */
export function imagesShown<T extends { sopInstanceUid: string; metadata: string }>(view: DeidView, rows: T[]): { shown: T[]; refused?: ApiError } {
  const shown: T[] = [];
  let refused: ApiError | undefined;
  for (const r of rows) {
    const reason = withheldReason(JSON.parse(r.metadata) as DicomJson, view.deidentifier.options);
    if (reason === undefined) shown.push(r);
    else refused ??= withheld(view, r.sopInstanceUid, reason);
  }
  return { shown, refused };
}
