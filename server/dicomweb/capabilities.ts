import Router, { type RouterContext } from '@koa/router';
import type { AppDeps } from '../deps.js';
import { ATTRIBUTES, type Level } from '../dicom/attributes.js';
import { TRANSFER_SYNTAXES } from '../dicom/transfer-syntax.js';
import { ApiError } from '../errors.js';
import { parseAccept, typeMatches } from '../http/accept.js';
import { dicomwebBase } from '../http/base-url.js';
import { RENDERED_TYPES } from '../render/encode.js';
import { CHANGES_PARAMS } from './changes.js';
import { dicomwebRouter, NOT_BUILT } from './routes.js';

// The Capabilities transaction (PS3.18 §8.9): OPTIONS on the service's base
// URI answers with a Capabilities Description (PS3.18 Annex H), a WADL
// document of every resource, method, query parameter and media type.
//
// It is generated from the route table itself (dicomweb/routes.ts), so a
// route added there is described here, and a route that answers 501 (a
// resource that is not built) is left out. What each kind of resource takes
// and sends comes from the tables the handlers use: the QIDO matching keys
// from the attribute registry, the pixel media types from the transfer
// syntax table.

export const WADL = 'application/vnd.sun.wadl+xml';

interface Param {
  name: string;
  style: 'query' | 'header' | 'template';
  doc?: string;
  repeating?: boolean;
  options?: readonly string[];
}

interface MethodDescription {
  id: string;
  params: Param[];
  /** Representation media types of the request body. */
  request?: readonly string[];
  /** Representation media types of the response body. */
  response: readonly string[];
}

const DICOM_JSON = 'application/dicom+json';
const MULTIPART_DICOM = 'multipart/related; type="application/dicom"';

function qidoParams(level: Level): Param[] {
  const depth: Record<Level, number> = { study: 0, series: 1, instance: 2 };
  const keys = ATTRIBUTES.filter((a) => a.matching !== null && depth[a.level] <= depth[level]).map((a) => a.keyword as string);
  return [
    ...[...new Set(keys)].map((k): Param => ({ name: k, style: 'query', doc: 'matching key (PS3.4 §C.2.2.2); also by tag' })),
    { name: 'includefield', style: 'query', repeating: true, doc: 'attribute keyword, tag, or all' },
    { name: 'limit', style: 'query' },
    { name: 'offset', style: 'query' },
    { name: 'fuzzymatching', style: 'query', options: ['false'] },
    { name: 'emptyvaluematching', style: 'query', options: ['false'] },
    { name: 'multiplevaluematching', style: 'query', options: ['false'] },
  ];
}

/** The media types frames and pixel bulk data go out as: every syntax Cairn serves as stored, by PS3.18 Table 8.7.3-5. */
function pixelTypes(): string[] {
  const types = new Set<string>();
  for (const ts of TRANSFER_SYNTAXES.values()) if (ts.servedAsStored) types.add(`multipart/related; type="${ts.pixelMediaType}"`);
  return [...types];
}

const INCLUDE_REJECTED: Param = { name: 'X-Include-Rejected', style: 'header', options: ['true', 'false'], doc: 'admins only: show rejected instances' };

/** What one route (method and path relative to the base) takes and sends; undefined for a route Cairn does not describe further. */
function describe(method: string, path: string): MethodDescription | undefined {
  const last = path.split('/').filter(Boolean).at(-1) ?? '';
  const levelOf = (p: string): Level => (/instances$/.test(p) ? 'instance' : /series$/.test(p) ? 'series' : 'study');
  if (method === 'POST' && /^\/studies(\/\{studyUid\})?$/.test(path)) {
    return {
      id: 'StoreInstances',
      params: [],
      request: [MULTIPART_DICOM, 'multipart/related; type="application/dicom+json"', 'multipart/related; type="application/dicom+xml"'],
      response: [DICOM_JSON],
    };
  }
  if (method === 'GET' && ['studies', 'series', 'instances'].includes(last)) {
    return { id: `Search${last[0].toUpperCase()}${last.slice(1)}`, params: [...qidoParams(levelOf(path)), INCLUDE_REJECTED], response: [DICOM_JSON] };
  }
  if (method === 'GET' && last === 'metadata') return { id: 'RetrieveMetadata', params: [INCLUDE_REJECTED], response: [DICOM_JSON] };
  if (method === 'GET' && /\/frames\/\{frames\}$/.test(path)) return { id: 'RetrieveFrames', params: [INCLUDE_REJECTED], response: pixelTypes() };
  if (method === 'GET' && /\/bulkdata\/\{tag\}$/.test(path)) {
    return {
      id: 'RetrieveBulkdata',
      params: [INCLUDE_REJECTED],
      response: ['application/octet-stream', 'multipart/related; type="application/octet-stream"', ...pixelTypes()],
    };
  }
  // PS3.18 §8.3.5.1: the query parameters of rendered and thumbnail resources.
  if (method === 'GET' && (last === 'rendered' || last === 'thumbnail')) {
    const names = last === 'rendered' ? ['window', 'viewport', 'quality', 'annotation', 'accept'] : ['viewport', 'accept'];
    const types = last === 'rendered' ? [...RENDERED_TYPES] : RENDERED_TYPES.filter((t) => t !== 'image/gif');
    return {
      id: last === 'rendered' ? 'RetrieveRendered' : 'RetrieveThumbnail',
      params: names.map((name): Param => ({ name, style: 'query' })),
      response: [...types, ...types.map((t) => `multipart/related; type="${t}"`)],
    };
  }
  if (method === 'GET' && /(studies|series|instances)\/\{\w+\}$/.test(path)) {
    return {
      id: `Retrieve${levelOf(path.replace(/\/\{\w+\}$/, '')).replace(/^./, (c) => c.toUpperCase())}`,
      params: [INCLUDE_REJECTED],
      response: [MULTIPART_DICOM],
    };
  }
  if (method === 'DELETE') return { id: 'Delete', params: [INCLUDE_REJECTED], response: [] };
  // IHE IOCM: {code} is a rejection title of PS3.16 CID 7010 as code^scheme, such as 113001^DCM.
  if (method === 'POST' && last === '{code}' && path.includes('/reject/')) return { id: 'Reject', params: [], response: ['application/json'] };
  if (method === 'GET' && last === 'changes') {
    return { id: 'ChangeFeed', params: CHANGES_PARAMS.map((name): Param => ({ name, style: 'query' })), response: ['application/json'] };
  }
  return undefined;
}

export interface DescribedRoute {
  method: string;
  /** Relative to the service's base, parameters as `{name}`. */
  path: string;
  description?: MethodDescription;
}

/** Every route of the table that answers (not the 501 ones), with what it takes and sends. */
export function describedRoutes(table: Router): DescribedRoute[] {
  const prefix = table.opts.prefix ?? '';
  const out: DescribedRoute[] = [];
  for (const layer of table.stack) {
    const handlers = layer.stack as unknown as Record<symbol, unknown>[];
    if (handlers.some((h) => NOT_BUILT in h)) continue;
    const path =
      String(layer.path)
        .slice(prefix.length)
        .replace(/:(\w+)/g, '{$1}') || '/';
    for (const method of layer.methods) {
      // HEAD is the GET a router answers for free; OPTIONS is this transaction.
      if (method === 'HEAD' || method === 'OPTIONS') continue;
      out.push({ method, path, description: describe(method, path) });
    }
  }
  return out;
}

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The WADL document (PS3.18 Annex H) for the service at `base`. */
export function wadl(routes: readonly DescribedRoute[], base: string): string {
  const byPath = new Map<string, DescribedRoute[]>();
  for (const r of routes) byPath.set(r.path, [...(byPath.get(r.path) ?? []), r]);
  const resources = [...byPath].map(([path, methods]) => {
    const templates = [...path.matchAll(/\{(\w+)\}/g)].map((m) => `      <param name="${m[1]}" style="template" required="true"/>`);
    const body = methods.map((m) => method(m));
    return [`    <resource path="${xml(path.replace(/^\//, ''))}">`, ...templates, ...body, '    </resource>'].join('\n');
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<application xmlns="http://wadl.dev.java.net/2009/02">',
    `  <resources base="${xml(base)}">`,
    ...resources,
    '  </resources>',
    '</application>',
    '',
  ].join('\n');
}

/**
 * The same description as JSON, for clients that do not read WADL: the
 * resources of the WADL document with the same methods, parameters and media
 * types, built from the same described routes.
 */
export function capabilitiesJson(routes: readonly DescribedRoute[], base: string) {
  const byPath = new Map<string, DescribedRoute[]>();
  for (const r of routes) byPath.set(r.path, [...(byPath.get(r.path) ?? []), r]);
  return {
    base,
    resources: [...byPath].map(([path, methods]) => ({
      path: path.replace(/^\//, ''),
      templateParams: [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]),
      methods: methods.map((m) => ({
        method: m.method,
        ...(m.description ? { id: m.description.id } : {}),
        params: (m.description?.params ?? []).map((p) => ({
          name: p.name,
          style: p.style,
          ...(p.doc ? { doc: p.doc } : {}),
          ...(p.repeating ? { repeating: true } : {}),
          ...(p.options ? { options: [...p.options] } : {}),
        })),
        request: [...(m.description?.request ?? [])],
        response: [...(m.description?.response ?? [])],
      })),
    })),
  };
}

function method(r: DescribedRoute): string {
  const d = r.description;
  const id = d ? ` id="${d.id}"` : '';
  const lines = [`      <method name="${r.method}"${id}>`];
  const params = (d?.params ?? []).map((p) => {
    const attrs = `name="${xml(p.name)}" style="${p.style}"${p.repeating ? ' repeating="true"' : ''}`;
    const inner = [...(p.doc ? [`<doc>${xml(p.doc)}</doc>`] : []), ...(p.options ?? []).map((o) => `<option value="${xml(o)}"/>`)];
    return inner.length ? `          <param ${attrs}>${inner.join('')}</param>` : `          <param ${attrs}/>`;
  });
  const requestBody = (d?.request ?? []).map((t) => `          <representation mediaType="${xml(t)}"/>`);
  if (params.length || requestBody.length) lines.push('        <request>', ...params, ...requestBody, '        </request>');
  const response = (d?.response ?? []).map((t) => `          <representation mediaType="${xml(t)}"/>`);
  lines.push('        <response>', ...response, '        </response>', '      </method>');
  return lines.join('\n');
}

/**
 * OPTIONS /dicom-web: the Capabilities Description. It names no patient
 * data, so it needs no credentials, and it carries no audit row.
 */
export function capabilitiesRouter(deps: AppDeps): Router {
  // The route table is a function of the dependencies alone: this copy is the one the app serves.
  const answer = capabilitiesAnswer(deps, dicomwebRouter(deps));
  const r = new Router();
  r.options('/dicom-web', answer);
  r.options('/dicom-web/', answer);
  return r;
}

/**
 * The Capabilities transaction for a route table, its routes those `keep`
 * leaves (a collection's root describes what it serves), at the base the
 * request reached (http/base-url.ts).
 */
export function capabilitiesAnswer(deps: AppDeps, table: Router, keep: (r: DescribedRoute) => boolean = () => true) {
  return async (ctx: RouterContext): Promise<void> => {
    // The first acceptable form by q: the WADL document (also for */*), or its JSON form.
    const form = parseAccept(ctx.get('accept') || undefined)
      .map((a) => (typeMatches(a.type, WADL) || typeMatches(a.type, 'application/xml') ? 'wadl' : a.type === 'application/json' ? 'json' : undefined))
      .find((f) => f !== undefined);
    if (!form) throw new ApiError(406, 'NotAcceptable', `the capabilities description is sent as ${WADL} (PS3.18 Annex H) or as application/json`);
    const routes = describedRoutes(table).filter(keep);
    ctx.set('Allow', 'OPTIONS');
    ctx.set('Vary', 'Accept');
    ctx.type = form === 'wadl' ? WADL : 'application/json';
    ctx.body = form === 'wadl' ? wadl(routes, dicomwebBase(ctx, deps.config)) : capabilitiesJson(routes, dicomwebBase(ctx, deps.config));
  };
}
