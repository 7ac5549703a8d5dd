import type { RouterContext } from '@koa/router';
import type { Next } from 'koa';
import { permits, type Principal } from '../access.js';
import { AuthFailure } from '../auth/tokens.js';
import type { AppDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import type { CollectionDirectory } from './directory.js';
import { isShareToken } from './directory.js';
import { UUID } from './rows.js';
import { SHARE_COOKIE, shareEndedError } from './share-link.js';

// The first middleware below /collections/{id}/dicom-web, before each
// route's guard (http/guard.ts): it decides who reads through the
// collection, and confines the guard's Caller to it (ctx.state.collection),
// so the unchanged DICOMweb handlers see only the collection's members
// (server/access.ts, membership()) through the collection's de-identified
// view (server/deid/research.ts). Every call is audited with the collection
// named.
//
// Who may read through it: a share token of this collection (an outside
// institution, with no clearance: labelled studies stay hidden), a steward or
// an administrator, or a user the collection is granted to by name or role.
// Anyone else finds no collection (404), as if it did not exist.

const SEARCH = /\/(studies|series|instances)$/;
const NOT_FOUND = (id: string) => new ApiError(404, 'CollectionNotFound', `collection ${id} was not found`);

export function collectionScope(deps: AppDeps, directory: CollectionDirectory) {
  return async (ctx: RouterContext, next: Next): Promise<void> => {
    const id = ctx.params.collectionId;
    const audit = ctx.state.audit;
    if (audit) {
      // The route's guard names the action again; this names it for a call refused before the guard runs.
      audit.action = SEARCH.test(ctx.path) ? 'search' : 'retrieve';
      audit.detail = { ...audit.detail, collection: id };
    }
    // OPTIONS on the root itself is the Capabilities transaction (PS3.18 §8.9), a read like the others.
    const capabilities = ctx.method === 'OPTIONS' && /\/dicom-web\/?$/.test(ctx.path);
    if (capabilities && audit) audit.action = 'collection-read';
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD' && !capabilities)
      throw new ApiError(405, 'MethodNotAllowed', "a collection's DICOMweb root is read-only: it serves searches and retrievals", { Allow: 'GET, HEAD' });
    if (ctx.path.endsWith('/changes')) throw new ApiError(404, 'NotFound', "the change feed is not served through a collection's DICOMweb root");
    if (!deps.research) throw new ApiError(503, 'DeidentificationUnavailable', 'collections are served de-identified, and de-identification is not set up');
    if (!UUID.test(id ?? '')) throw NOT_FOUND(id);
    await admit(ctx, directory, id);
    if (!ctx.state.identity) return next(); // the guard answers 401
    const collection = await directory.collection(id);
    if (!collection) throw NOT_FOUND(id);
    ctx.state.collection = { id, deid: { profile: collection.profile, project: collection.project } };
    return next();
  };
}

/** Puts the identity this collection knows in ctx.state: a share's, or the authenticated user's when granted. */
async function admit(ctx: RouterContext, directory: CollectionDirectory, id: string): Promise<void> {
  const header = ctx.get('authorization');
  // The share cookie a share link set (share-link.ts) counts when no Authorization header is sent.
  const bearer = header ? /^bearer\s+(\S+)\s*$/i.exec(header)?.[1] : ctx.cookies.get(SHARE_COOKIE);
  if (bearer !== undefined && isShareToken(bearer)) {
    // authenticate() took the share token for a malformed JWT; here it is read for what it is.
    ctx.state.authFailure = undefined;
    ctx.state.identity = undefined;
    const check = await directory.share(bearer);
    if (!check.ok && check.ended) {
      if (check.ended.share.collectionId !== id) throw NOT_FOUND(id);
      // RFC 6750 §3.1: an expired or revoked token is answered 401 invalid_token; the body says when it ended and whom to ask.
      if (ctx.state.audit) ctx.state.audit.detail = { ...ctx.state.audit.detail, share: check.ended.share.id, ended: check.ended.how };
      throw shareEndedError(check.ended, 401);
    }
    if (!check.ok) {
      ctx.state.authFailure = new AuthFailure('invalid_token', check.reason);
      return;
    }
    // A token of another collection opens nothing here, as if the collection did not exist.
    if (check.share.collectionId !== id) throw NOT_FOUND(id);
    const principal: Principal = Object.freeze({
      sub: `share:${check.share.id}`,
      roles: Object.freeze(['researcher'] as const),
      clearances: Object.freeze([]),
    });
    ctx.state.identity = { principal, via: 'bearer' };
    const audit = ctx.state.audit;
    if (audit) audit.detail = { ...audit.detail, share: check.share.id, ...(check.share.recipient ? { recipient: check.share.recipient } : {}) };
    return;
  }
  const principal = ctx.state.identity?.principal;
  if (!principal) return;
  if (permits(principal, 'collect')) return;
  if (!(await directory.granted(id, principal.sub, principal.roles))) throw NOT_FOUND(id);
}
