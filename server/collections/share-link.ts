import Router, { type RouterContext } from '@koa/router';
import type { AppDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import type { CollectionDirectory } from './directory.js';
import { isShareToken } from './directory.js';
import { UUID } from './rows.js';

// A share link opens a collection's viewer in a browser:
// /collections/{id}/open#<token>. The token travels in the fragment, which a
// browser never sends, so it stays out of every log, history entry and
// Referer; the page posts it once in the Authorization header, and gets it
// back as an HttpOnly cookie valid for that collection's paths only, until
// the share expires. The DICOMweb root (scope.ts) reads the cookie as it
// reads the header: a revoked or expired share is refused the same way.

export const SHARE_COOKIE = 'cairn_share';

export function shareLinkRouter(deps: AppDeps, directory: CollectionDirectory): Router {
  const r = new Router({ prefix: '/collections/:collectionId' });
  r.get('/open', (ctx) => openPage(ctx));
  r.post('/share-session', (ctx) => openSession(deps, directory, ctx));
  return r;
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
      return r.json().then(function (b) { status.textContent = 'The share cannot be opened: ' + (b.message || r.status); });
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
  if (!check.ok) throw new ApiError(401, 'InvalidToken', check.reason);
  if (check.share.collectionId !== id) throw new ApiError(404, 'CollectionNotFound', `collection ${id.slice(0, 40)} was not found`);
  if (audit) audit.detail = { ...audit.detail, share: check.share.id };
  const secure = ctx.secure || (deps.config.publicUrl ?? '').startsWith('https:');
  ctx.cookies.set(SHARE_COOKIE, token, {
    path: `/collections/${id}/`,
    httpOnly: true,
    sameSite: 'strict',
    secure,
    expires: check.share.expiresAt,
    overwrite: true,
  });
  ctx.status = 204;
}
