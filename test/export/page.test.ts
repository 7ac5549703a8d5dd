import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hashPassword } from '../../server/auth/passwords.js';
import { saveUser } from '../../server/db/users.js';
import { launchBrowser } from '../e2e/browser.js';
import { createTestArchive, multipartBody, type TestArchive } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';

// The exports page: a logged-in user follows the push jobs it started and
// cancels one, in Debian's Chromium. Blob-free, so only in the fs project.

const VISITOR = { username: 'dr-page', password: 'a-long-enough-password', roles: ['clinician'] as const };

let a: TestArchive;
let server: Server;
let origin: string;
let browser: Browser | undefined;

beforeAll(async () => {
  a = await createTestArchive();
  server = a.app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await saveUser(a.deps.db, { username: VISITOR.username, password_hash: await hashPassword(VISITOR.password, 4), roles: [...VISITOR.roles], clearances: [] });
});
afterAll(async () => {
  await browser?.close();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await a?.close();
});

describe('exports page', () => {
  it('is served at /exports', async () => {
    const r = await a.anonymous.get('/exports');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toContain('text/html');
    expect(r.text).toContain('/api/exports');
  });

  it.skipIf(inject('s3'))("shows the user's jobs with their progress, and cancels one", async () => {
    const s = syntheticInstance({ BurnedInAnnotation: 'NO' });
    const m = multipartBody([s.bytes]);
    await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body);
    await a.request.post('/api/export/destinations').send({ name: 'partner', url: 'http://127.0.0.1:9/dicom-web' });
    const job = await a
      .as({ sub: VISITOR.username, roles: ['clinician'] })
      .post('/api/exports')
      .send({ destination: 'partner', studies: [s.studyUid] });
    expect(job.status).toBe(202);
    browser = await launchBrowser();
    const page = await (await browser.newContext({ baseURL: origin })).newPage();
    await page.goto('/login?next=/exports');
    await page.locator('#username').fill(VISITOR.username);
    await page.locator('#password').fill(VISITOR.password);
    await Promise.all([page.waitForURL('**/exports'), page.getByRole('button', { name: 'Log in' }).click()]);
    const row = page.locator(`tr[data-id="${job.body.id}"]`);
    await row.waitFor();
    expect(await row.getAttribute('data-state')).toBe('queued');
    expect(await row.textContent()).toContain('0 sent · 1 to go');
    await row.getByRole('button', { name: 'Cancel' }).click();
    await page.locator(`tr[data-id="${job.body.id}"][data-state="cancelled"]`).waitFor();
    expect((await a.request.get(`/api/exports/${job.body.id}`)).body.state).toBe('cancelled');
  });
});
