import fs from 'node:fs';
import path from 'node:path';
import Router from '@koa/router';
import { PACKAGE_ROOT } from '../paths.js';
import { qidoQueryOf } from './study-list-filter.js';

const PAGE = fs.readFileSync(path.join(PACKAGE_ROOT, 'server/collections/page.html'), 'utf8');

/**
 * The stewards' page, GET /collections: make a collection from the study
 * list's current filter (the viewer's "Collections" link passes its query
 * string), see the collections, their members and shares, share and revoke.
 * The page holds no data: it reads and changes everything through
 * /api/collections with the session, under that API's guards.
 */
export function stewardPageRouter(): Router {
  const r = new Router();
  r.get(['/collections', '/collections/'], (ctx) => {
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = 'html';
    ctx.body = PAGE.replace('__CAIRN_QUERY__', escapeAttribute(qidoQueryOf(ctx.query)));
  });
  return r;
}

function escapeAttribute(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
