import Router, { type RouterContext } from '@koa/router';
import type { Next } from 'koa';
import type { AppDeps } from '../deps.js';
import { findInstances, findRenderable, type RenderableInstance } from '../db/lookup.js';
import { imagesShown } from '../deid/bytes.js';
import { withPseudonyms } from '../deid/pseudonyms.js';
import type { DicomJson } from '../dicom/json.js';
import { isValidUid } from '../dicom/uid.js';
import { ApiError } from '../errors.js';
import { parseAccept, typeMatches, type Acceptable } from '../http/accept.js';
import { callerOf, guard } from '../http/guard.js';
import { sendReply } from '../http/reply.js';
import { documentKind, REPORT_TYPES } from '../render/document.js';
import { parseQuality, RENDERED_TYPES, type RenderedType, type Viewport } from '../render/encode.js';
import { windowProblem, type Window } from '../render/pipeline.js';
import { renderImage, renderSlots, type RenderSlots } from '../render/render.js';
import { retrieveBytes } from '../retrieve.js';
import { notFound, targetOf } from './target.js';
import { documentReply, documentType } from './wado-uri-document.js';

// WADO-URI (PS3.18 §9): one GET whose query names an instance and how to
// send it. A thin adapter: application/dicom goes through the bytes seam
// (server/retrieve.ts) with the Accept it stands for, the image types through
// the renderer of the rendered resources (server/render/), both behind the
// same guard, scoped reads and de-identified views as WADO-RS.

type Query = Record<string, string | string[] | undefined>;

/** What a WADO-URI query asks, checked. */
export type WadoUriRequest =
  | { kind: 'dicom'; accepts: Acceptable[]; anonymize: boolean }
  | {
      kind: 'image';
      type: RenderedType;
      rows?: number;
      columns?: number;
      region?: Region;
      window?: Window;
      frameNumber?: number;
      quality?: number;
      /** Other types of the contentType list, for a report or an encapsulated document (the object decides). */
      documents: string[];
      /** No contentType: the default of the object's resource category (image/jpeg for images, §9.3). */
      defaulted: boolean;
    }
  | { kind: 'document'; documents: string[] };

/** PS3.18 §9: the part of the image shown, as fractions of its width and height from the top left. */
interface Region {
  xmin: number;
  ymin: number;
  xmax: number;
  ymax: number;
}

const DICOM = 'application/dicom';
/** The largest rows or columns asked for, as for a viewport. */
const MAX_SIDE = 8192;
/** Parameters that only an image answer takes, and those that only application/dicom takes (PS3.18 §9). */
const IMAGE_ONLY = ['rows', 'columns', 'region', 'windowCenter', 'windowWidth', 'frameNumber', 'imageQuality'];
const DICOM_ONLY = ['transferSyntax', 'anonymize'];

const bad = (message: string) => new ApiError(400, 'InvalidWadoUriRequest', message);

function one(query: Query, name: string): string | undefined {
  const v = query[name];
  if (Array.isArray(v)) throw bad(`"${name}" may be given once`);
  return v;
}

function uidParam(query: Query, name: string): string {
  const v = one(query, name);
  if (v === undefined || v === '') throw bad(`"${name}" is required`);
  if (!isValidUid(v)) throw bad(`${name} "${v}" is not a valid DICOM UID`);
  return v;
}

function intParam(query: Query, name: string, min: number, max: number): number | undefined {
  const v = one(query, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw bad(`${name} "${v}" must be an integer from ${min} to ${max}`);
  return n;
}

function parseRegion(v: string | undefined): Region | undefined {
  if (v === undefined) return undefined;
  const nums = v.split(',').map((s) => (s.trim() === '' ? Number.NaN : Number(s)));
  const [xmin, ymin, xmax, ymax] = nums;
  if (nums.length !== 4 || !nums.every((n) => n >= 0 && n <= 1) || !(xmin < xmax) || !(ymin < ymax))
    throw bad(`region "${v}" must be xmin,ymin,xmax,ymax, fractions from 0.0 to 1.0 with xmin < xmax and ymin < ymax`);
  return { xmin, ymin, xmax, ymax };
}

function parseWindowParams(query: Query): Window | undefined {
  const c = one(query, 'windowCenter');
  const w = one(query, 'windowWidth');
  if (c === undefined && w === undefined) return undefined;
  // PS3.18 §9: windowCenter and windowWidth go together.
  if (c === undefined || w === undefined) throw bad('windowCenter and windowWidth must be given together');
  const window: Window = { center: Number(c), width: Number(w), fn: 'LINEAR' };
  if (c.trim() === '' || w.trim() === '' || !Number.isFinite(window.center) || !Number.isFinite(window.width))
    throw bad(`windowCenter "${c}" and windowWidth "${w}" must be decimal numbers`);
  const problem = windowProblem(window);
  if (problem) throw bad(problem);
  return window;
}

/**
 * Checks a WADO-URI query (PS3.18 §9, the request parameters): 400 for a
 * missing or malformed parameter or one that does not go with the content
 * type, 406 for a content type Cairn does not make. Parameters the standard
 * does not define are left alone, as links built by other systems carry them.
 */
export function wadoUriRequestOf(query: Query): WadoUriRequest & { studyUid: string; seriesUid: string; sopInstanceUid: string } {
  const requestType = one(query, 'requestType');
  if (requestType !== 'WADO') throw bad(requestType === undefined ? '"requestType" is required and must be WADO' : `requestType "${requestType}" must be WADO`);
  const uids = { studyUid: uidParam(query, 'studyUID'), seriesUid: uidParam(query, 'seriesUID'), sopInstanceUid: uidParam(query, 'objectUID') };
  for (const name of ['presentationUID', 'presentationSeriesUID'])
    if (one(query, name) !== undefined) throw bad(`${name}: Cairn does not apply presentation states to WADO-URI images`);
  one(query, 'charset');
  // PS3.18 §9: without contentType the answer is image/jpeg.
  const asked = one(query, 'contentType');
  const contentType = asked || 'image/jpeg';
  const given = (names: string[]) => names.filter((n) => query[n] !== undefined);
  // Types that are neither DICOM nor an image: a report's text or an encapsulated document's own type.
  const documents: string[] = [];
  for (const a of parseAccept(contentType)) {
    if (a.multipart && a.type !== '*/*') continue;
    if (a.type === DICOM) {
      const extra = given(IMAGE_ONLY);
      if (extra.length) throw bad(`${extra.join(', ')} may not be given with contentType application/dicom`);
      const ts = one(query, 'transferSyntax');
      if (ts !== undefined && !isValidUid(ts)) throw bad(`transferSyntax "${ts}" is not a valid DICOM UID`);
      const anonymize = one(query, 'anonymize');
      if (anonymize !== undefined && anonymize !== 'yes') throw bad(`anonymize "${anonymize}" may only be yes`);
      return { ...uids, kind: 'dicom', accepts: [{ multipart: false, type: DICOM, transferSyntax: ts, q: 1 }], anonymize: anonymize === 'yes' };
    }
    const type = RENDERED_TYPES.find((t) => typeMatches(a.type, t));
    if (!type) {
      if (!a.multipart) documents.push(a.type);
      continue;
    }
    const extra = given(DICOM_ONLY);
    if (extra.length) throw bad(`${extra.join(', ')} may only be given with contentType application/dicom`);
    return {
      ...uids,
      kind: 'image',
      type,
      rows: intParam(query, 'rows', 1, MAX_SIDE),
      columns: intParam(query, 'columns', 1, MAX_SIDE),
      region: parseRegion(one(query, 'region')),
      window: parseWindowParams(query),
      frameNumber: intParam(query, 'frameNumber', 1, 2 ** 31 - 1),
      quality: parseQuality(one(query, 'imageQuality')),
      documents,
      defaulted: asked === undefined || asked === '',
    };
  }
  if (documents.length) return { ...uids, kind: 'document', documents };
  throw new ApiError(
    406,
    'NotAcceptable',
    `WADO-URI answers ${[DICOM, ...RENDERED_TYPES, ...REPORT_TYPES].join(', ')} and an encapsulated document's own type; ` +
      `contentType "${contentType}" names none of them`,
  );
}

/** The viewport (server/render/encode.ts) for rows, columns and region, in pixels of the stored image. */
export function viewportOf(req: Extract<WadoUriRequest, { kind: 'image' }>, imageRows: number, imageColumns: number): Viewport | undefined {
  const r = req.region;
  const source = r && {
    x: Math.floor(r.xmin * imageColumns),
    y: Math.floor(r.ymin * imageRows),
    width: Math.max(1, Math.round((r.xmax - r.xmin) * imageColumns)),
    height: Math.max(1, Math.round((r.ymax - r.ymin) * imageRows)),
  };
  if (req.rows === undefined && req.columns === undefined) return source && { width: source.width, height: source.height, source };
  // One of rows or columns alone bounds that side; the image keeps its aspect ratio (fit inside).
  return { width: req.columns ?? MAX_SIDE, height: req.rows ?? MAX_SIDE, ...(source ? { source } : {}) };
}

function sizeOf(row: RenderableInstance): { rows: number; columns: number } {
  const json = JSON.parse(row.metadata) as Record<string, { Value?: unknown[] }>;
  return { rows: Number(json['00280010']?.Value?.[0] ?? 0), columns: Number(json['00280011']?.Value?.[0] ?? 0) };
}

/** Puts the UIDs of the query where the guard's pseudonym translation and the scoped reads find them. */
async function parseQuery(ctx: RouterContext, next: Next): Promise<void> {
  const req = wadoUriRequestOf(ctx.query);
  ctx.params.studyUid = req.studyUid;
  ctx.params.seriesUid = req.seriesUid;
  ctx.params.sopInstanceUid = req.sopInstanceUid;
  ctx.state.wadoUri = req;
  return next();
}

type Deps = AppDeps & { slots?: RenderSlots };

function wadoUri(deps: Deps) {
  return async (ctx: RouterContext): Promise<void> => {
    const req = ctx.state.wadoUri as WadoUriRequest;
    const t = targetOf(ctx);
    const caller = callerOf(ctx);
    const view = deps.research?.viewOf(caller);
    if (req.kind === 'dicom') {
      // PS3.18 §9: anonymize=yes asks for the instance without patient identification; Cairn sends it only through a de-identified view.
      if (req.anonymize && !view)
        throw bad('anonymize=yes: Cairn de-identifies instances only for roles with a de-identified view, and yours has none; retrieve without anonymize');
      const rows = await findInstances(deps.db, caller, t);
      if (!rows.length) throw notFound(t);
      return sendReply(ctx, await retrieveBytes(deps, caller, req.accepts, { kind: 'instances', rows, one: true }));
    }
    let rows = await findRenderable(deps.db, caller, t);
    if (!rows.length) throw notFound(t);
    // A report or an encapsulated document is sent as text or as its document when the contentType allows (or names nothing).
    const doc = documentKind(JSON.parse(rows[0].metadata) as DicomJson);
    const type = documentType(doc, { documents: req.documents, defaulted: req.kind === 'image' && req.defaulted });
    if (type) return sendReply(ctx, await documentReply(deps, caller, rows[0], type));
    if (req.kind === 'document')
      throw new ApiError(
        406,
        'NotAcceptable',
        doc.kind === 'other'
          ? `contentType "${req.documents.join(', ')}" is for reports and documents; this instance is neither`
          : `this ${doc.kind === 'report' ? `report is sent as ${REPORT_TYPES.join(' or ')}` : `document is sent as ${doc.mimeType}`}, ` +
              `which contentType "${req.documents.join(', ')}" does not allow`,
      );
    // A de-identified view never shows the pixels of an instance it withholds (burned-in text, PS3.15 E.1.1).
    if (view) {
      const { shown, refused } = imagesShown(view, rows);
      if (!shown.length && refused) throw refused;
      rows = shown;
    }
    const [row] = rows;
    const count = row.frames?.length ?? 1;
    // PS3.18 §9: frameNumber picks one frame; without it a GIF shows every frame, other types the first.
    const frames = req.frameNumber ? [req.frameNumber] : req.type === 'image/gif' && count > 1 ? Array.from({ length: count }, (_, i) => i + 1) : [1];
    const size = sizeOf(row);
    const image = await renderImage(deps, row, frames, {
      type: req.type,
      window: req.window,
      quality: req.quality,
      viewport: viewportOf(req, size.rows, size.columns),
    });
    return sendReply(ctx, { multipart: false, part: { contentType: req.type, length: image.length, body: () => image } });
  };
}

/** WADO-URI at /wado, where clients commonly look for it, and beside the DICOMweb services at /dicom-web/wado. */
export function wadoUriRouter(deps: AppDeps): Router {
  const r = new Router();
  const chain = wadoUriChain(deps, renderSlots());
  for (const path of ['/wado', '/dicom-web/wado']) r.get(path, ...chain);
  return r;
}

/** The middlewares of a WADO-URI route, for a collection's own (server/collections/) behind its scope. */
export function wadoUriChain(deps: AppDeps, slots: RenderSlots) {
  return [parseQuery, withPseudonyms(deps, guard('retrieve', 'retrieve')), wadoUri({ ...deps, slots })] as const;
}
