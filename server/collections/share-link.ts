import Router, { type RouterContext } from '@koa/router';
import type { AppDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import type { CollectionDirectory } from './directory.js';
import { isShareToken } from './directory.js';
import { UUID, type Share } from './rows.js';

// A share link opens a collection's viewer in a browser:
// /collections/{id}/open#<token>. The token travels in the fragment, which a
// browser never sends, so it stays out of every log, history entry and
// Referer; the page posts it once in the Authorization header, and gets it
// back as an HttpOnly cookie valid for that collection's paths only, until
// the share expires. The DICOMweb root (scope.ts) reads the cookie as it
// reads the header: a revoked or expired share is refused the same way.
//
// A share that has ended (expired or revoked) is told to its holder as such,
// not as a login to make: GET /collections/{id}/share-ended, where the
// collection's viewer sends a browser whose reads are refused, answers
// 410 Gone (the link will never open again, RFC 9110 §15.5.11), as a page for
// a browser and as JSON for any other client, saying when it ended and whom
// to ask for a new one. It names the share's steward and nothing of the
// collection or its studies. The DICOMweb root itself answers an ended share
// 401 with an RFC 6750 invalid_token challenge and the same words in its body
// (scope.ts): there the credential is what is refused, not the resource.

export const SHARE_COOKIE = 'cairn_share';
/** How long a browser keeps the share cookie past the share's end: to be told it ended, never to read (every request checks the share). */
const COOKIE_GRACE_MS = 7 * 86_400_000;

export function shareLinkRouter(deps: AppDeps, directory: CollectionDirectory): Router {
  const r = new Router({ prefix: '/collections/:collectionId' });
  r.get('/open', (ctx) => openPage(ctx));
  r.post('/share-session', (ctx) => openSession(deps, directory, ctx));
  r.get('/share-ended', (ctx) => shareEnded(directory, ctx));
  return r;
}

/** What the holder of an ended share is told: how and when it ended, and whom to ask. */
export function endedMessage(ended: { how: 'expired' | 'revoked'; share: Share }): string {
  const { how, share } = ended;
  const when = (how === 'expired' ? share.expiresAt : (share.revokedAt ?? share.expiresAt)).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const ask = share.createdBy ? `Ask ${share.createdBy}, who shared it, for a new link.` : 'Ask whoever sent it for a new link.';
  return `This share link ${how === 'expired' ? 'expired' : 'was revoked'} at ${when}. ${ask}`;
}

/** The error an ended share's token meets, for an API client. */
export function shareEndedError(ended: { how: 'expired' | 'revoked'; share: Share }, status: 401 | 410): ApiError {
  const message = endedMessage(ended);
  const headers: Record<string, string> =
    status === 401
      ? {
          'WWW-Authenticate': `Bearer realm="cairn", error="invalid_token", error_description="the share has ${ended.how === 'expired' ? 'expired' : 'been revoked'}"`,
        }
      : {};
  return new ApiError(status, ended.how === 'expired' ? 'ShareExpired' : 'ShareRevoked', message, headers, {
    ended: ended.how,
    endedAt: (ended.how === 'expired' ? ended.share.expiresAt : (ended.share.revokedAt ?? ended.share.expiresAt)).toISOString(),
    ...(ended.share.createdBy ? { contact: ended.share.createdBy } : {}),
  });
}

/**
 * GET …/share-ended[?next=path]: where a browser lands when the collection's
 * viewer is refused. An ended share: 410 with what happened. A share still
 * open: back to `next` (the refusal was of something else). No share token:
 * a user whose session ended, sent to the login page as before.
 */
async function shareEnded(directory: CollectionDirectory, ctx: RouterContext): Promise<void> {
  const id = ctx.params.collectionId;
  if (!UUID.test(id)) throw new ApiError(404, 'CollectionNotFound', `collection ${id.slice(0, 40)} was not found`);
  const audit = ctx.state.audit;
  if (audit) {
    audit.action = 'collection-read';
    audit.detail = { collection: id, shareEnded: true };
  }
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Referrer-Policy', 'no-referrer');
  const html = ctx.accepts('json', 'html') === 'html';
  const nextParam = typeof ctx.query.next === 'string' ? ctx.query.next : '';
  // Only a path of this collection's viewer: never another site, never another collection.
  const back = nextParam.startsWith(`/collections/${id}/`) && !/[\\]|\/\/|\/\.\.?(\/|$)/.test(nextParam) ? nextParam : `/collections/${id}/`;
  const header = ctx.get('authorization');
  const token = header ? /^bearer\s+(\S+)\s*$/i.exec(header)?.[1] : ctx.cookies.get(SHARE_COOKIE);
  if (token === undefined || !isShareToken(token)) {
    if (!html) throw new ApiError(401, 'AuthenticationRequired', 'no share token was sent: log in at /login', { 'WWW-Authenticate': 'Bearer realm="cairn"' });
    ctx.redirect(`/login?next=${encodeURIComponent(back)}`);
    ctx.status = 303;
    return;
  }
  const check = await directory.share(token);
  if (check.ok) {
    if (check.share.collectionId !== id) throw new ApiError(404, 'CollectionNotFound', `collection ${id.slice(0, 40)} was not found`);
    if (!html) {
      ctx.body = { ended: false, expiresAt: check.share.expiresAt.toISOString() };
      return;
    }
    ctx.redirect(back);
    ctx.status = 303;
    return;
  }
  if (!check.ended) throw new ApiError(401, 'InvalidToken', `${check.reason}: ask whoever sent the link for a new one`);
  if (check.ended.share.collectionId !== id) throw new ApiError(404, 'CollectionNotFound', `collection ${id.slice(0, 40)} was not found`);
  if (audit) audit.detail = { ...audit.detail, share: check.ended.share.id, ended: check.ended.how };
  if (!html) throw shareEndedError(check.ended, 410);
  // A browser is answered with a page; the error handler answers JSON only.
  ctx.status = 410;
  ctx.type = 'html';
  ctx.body = endedPage(check.ended.how, endedMessage(check.ended));
}

function endedPage(how: 'expired' | 'revoked', message: string): string {
  const escaped = (t: string) => t.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Cairn: shared collection ${how === 'expired' ? 'expired' : 'revoked'}</title></head>
<body><main><h1>This shared collection is no longer available</h1>
<p id="message">${escaped(message)}</p></main></body></html>`;
}

function openPage(ctx: RouterContext): void {
  const id = ctx.params.collectionId;
  if (!UUID.test(id)) throw new ApiError(404, 'CollectionNotFound', `collection ${id.slice(0, 40)} was not found`);
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.type = 'html';
  ctx.body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Cairn: opening a shared collection</title></head>
<body><p id="status">Opening the shared collection…</p>
<script>
(function () {
  var token = decodeURIComponent(location.hash.slice(1));
  history.replaceState(null, '', location.pathname);
  var status = document.getElementById('status');
  if (!token) { status.textContent = 'This link holds no share token.'; return; }
  fetch('/collections/${id}/share-session', { method: 'POST', credentials: 'same-origin', headers: { Authorization: 'Bearer ' + token } })
    .then(function (r) {
      if (r.status === 204) { location.replace('/collections/${id}/'); return; }
      return r.json().then(function (b) { status.textContent = r.status === 410 ? b.message : 'The share cannot be opened: ' + (b.message || r.status); });
    })
    .catch(function () { status.textContent = 'The archive could not be reached.'; });
})();
</script></body></html>`;
}

async function openSession(deps: AppDeps, directory: CollectionDirectory, ctx: RouterContext): Promise<void> {
  const id = ctx.params.collectionId;
  const audit = ctx.state.audit;
  if (audit) {
    audit.action = 'collection-read';
    audit.detail = { collection: id, shareSession: true };
  }
  const token = /^bearer\s+(\S+)\s*$/i.exec(ctx.get('authorization'))?.[1];
  if (!token || !isShareToken(token)) throw new ApiError(401, 'InvalidToken', 'a share session is opened with the share token in the Authorization header');
  const check = await directory.share(token);
  if (!check.ok) {
    // An ended share's link is gone for good: its holder is told so, and whom to ask.
    if (check.ended && check.ended.share.collectionId === id) throw shareEndedError(check.ended, 410);
    throw new ApiError(401, 'InvalidToken', check.reason);
  }
  if (check.share.collectionId !== id) throw new ApiError(404, 'CollectionNotFound', `collection ${id.slice(0, 40)} was not found`);
  if (audit) audit.detail = { ...audit.detail, share: check.share.id };
  const secure = ctx.secure || (deps.config.publicUrl ?? '').startsWith('https:');
  ctx.cookies.set(SHARE_COOKIE, token, {
    path: `/collections/${id}/`,
    httpOnly: true,
    sameSite: 'strict',
    secure,
    expires: new Date(check.share.expiresAt.getTime() + COOKIE_GRACE_MS),
    overwrite: true,
  });
  ctx.status = 204;
}
