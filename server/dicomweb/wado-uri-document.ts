import type { Caller } from '../access.js';
import { findInstances, type RenderableInstance } from '../db/lookup.js';
import type { AppDeps } from '../deps.js';
import { parseInstance } from '../dicom/parse.js';
import { ApiError } from '../errors.js';
import { typeMatches } from '../http/accept.js';
import type { Reply } from '../http/reply.js';
import { documentBytes, REPORT_TYPES, reportHtml, reportText, type DocumentKind } from '../render/document.js';
import { retrieveBytes } from '../retrieve.js';

// WADO-URI's reports and documents (PS3.18 §9, Table 8.7.4-1): which type a
// report or an encapsulated document is sent in, and the reply, made from
// the bytes the caller may retrieve (server/render/document.ts shapes them).

/** What of a WADO-URI request decides a document's type (wado-uri.ts). */
export interface DocumentAsked {
  /** The contentType list's types that are neither DICOM nor an image. */
  documents: string[];
  /** No contentType was given. */
  defaulted: boolean;
}

const DICOM = 'application/dicom';

/**
 * The type a report or an encapsulated document is sent in: the first of
 * the contentType list it can be made in; without contentType, text/html for
 * a report and the document's own type (the default of their resource
 * categories, PS3.18 §9.3 and Table 8.7.4-1). Undefined when the instance is
 * an image, or when the list allows neither.
 */
export function documentType(doc: DocumentKind, req: DocumentAsked): string | undefined {
  if (doc.kind === 'other') return undefined;
  const defaulted = req.defaulted;
  if (doc.kind === 'report') return defaulted ? 'text/html' : req.documents.find((d) => REPORT_TYPES.some((r) => typeMatches(d, r)) && d !== '*/*');
  if (defaulted) return doc.mimeType;
  return req.documents.some((d) => typeMatches(d, doc.mimeType)) ? doc.mimeType : undefined;
}

/** Most bytes of an instance read whole to show it as a report or a document. */
const MAX_DOCUMENT_INSTANCE = 64 * 1024 * 1024;

/**
 * A report as text, or the document an instance holds: read from the bytes
 * this caller would get as application/dicom (so a de-identified view sends
 * its own de-identified report), never from the index.
 */
export async function documentReply(deps: AppDeps, caller: Caller, row: RenderableInstance, type: string): Promise<Reply> {
  const rows = await findInstances(deps.db, caller, { studyUid: row.studyUid, seriesUid: row.seriesUid, sopInstanceUid: row.sopInstanceUid });
  if (!rows.length) throw new ApiError(404, 'InstanceNotFound', 'the instance is no longer there');
  if (rows[0].size > MAX_DOCUMENT_INSTANCE)
    throw new ApiError(
      406,
      'TooLargeToShow',
      `the instance is larger than Cairn reads whole to show it (${MAX_DOCUMENT_INSTANCE} bytes); ask for application/dicom`,
    );
  const reply = await retrieveBytes(deps, caller, [{ multipart: false, type: DICOM, transferSyntax: '*', q: 1 }], { kind: 'instances', rows, one: true });
  const part = reply.multipart ? reply.parts[0] : reply.part;
  const bytes = await collect(await part.body());
  const parsed = await parseInstance(
    (async function* () {
      yield bytes;
    })(),
    {
      bulkThreshold: deps.config.bulkDataThreshold,
      maxHeaderBytes: Math.max(deps.config.maxHeaderBytes, bytes.length),
      maxSequenceDepth: deps.config.maxSequenceDepth,
      maxDataElements: deps.config.maxDataElements,
    },
  );
  let body: Buffer;
  let contentType = type;
  if (type === 'text/html' || type === 'text/plain') {
    body = Buffer.from(type === 'text/html' ? reportHtml(parsed.dataset) : reportText(parsed.dataset), 'utf8');
    contentType = `${type}; charset=utf-8`;
  } else {
    const el = parsed.bulk[ENCAPSULATED_DOCUMENT];
    const inline = parsed.dataset[ENCAPSULATED_DOCUMENT]?.InlineBinary;
    const value = el ? bytes.subarray(el.offset, el.offset + el.length) : inline ? Buffer.from(inline, 'base64') : undefined;
    if (!value) throw new ApiError(404, 'DocumentNotFound', 'the instance holds no Encapsulated Document (0042,0011)');
    body = documentBytes(value, parsed.dataset);
  }
  return { multipart: false, part: { contentType, length: body.length, body: () => body } };
}

const ENCAPSULATED_DOCUMENT = '00420011';

async function collect(body: Buffer | AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body;
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
  return Buffer.concat(chunks);
}
