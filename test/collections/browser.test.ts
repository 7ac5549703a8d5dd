import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseDeidViews } from '../../server/deid/settings.js';
import { multipartBody, sample } from '../helpers.js';
import {
  addAccount,
  keepScreenshot,
  launchBrowser,
  preparePage,
  REAL_IMAGE,
  startCairn,
  waitForImage,
  type RunningCairn,
  type Visitor,
} from '../e2e/browser.js';

// In a real (headless Debian) Chromium against the bundled OHIF: a partner
// opens a share link and OHIF, unchanged, lists the collection's one study
// de-identified and draws it from the collection's DICOMweb root; a steward
// makes a collection from the study list's filter on the stewards' page.
// Browser tests run in the fs project only, as the ones of test/e2e.

const CT_STUDY = '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322';
const DEID = { key: 'a-test-deid-key-that-is-long-enough-0123', views: parseDeidViews('researcher=modified-dates', undefined) };
const STEWARD: Visitor = { username: 'steward', password: 'e2e-password-steward', roles: ['steward'] };

let browser: Browser;
let cairn: RunningCairn;

describe.skipIf(inject('s3'))('collections in a browser', () => {
  beforeAll(async () => {
    [browser, cairn] = await Promise.all([launchBrowser(), startCairn({ deid: DEID })]);
    const a = cairn.archive;
    const m = multipartBody([sample('CT_small.dcm'), sample('MR_small.dcm')]);
    expect((await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
    await addAccount(cairn, STEWARD);
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await cairn?.close();
  });

  it('a share link opens OHIF on the collection: one study, de-identified, drawn', async () => {
    const a = cairn.archive;
    const c = await a.request.post('/api/collections').send({ name: 'CT for partners', studies: [CT_STUDY] });
    const s = await a.request.post(`/api/collections/${c.body.id}/shares`).send({ expiresInSeconds: 3600, recipient: 'Partner' });
    const { page, problems } = await preparePage(browser, cairn.origin);
    await page.goto(new URL(s.body.link).pathname + new URL(s.body.link).hash);
    await page.waitForURL(`**/collections/${c.body.id}/`);
    const rows = page.locator('tr[aria-selected]');
    await expect.poll(() => rows.count(), { timeout: 60_000 }).toBe(1);
    expect(await page.locator('[data-cy="cairn-upload"]').count(), 'no upload link in a collection').toBe(0);
    const listed = await rows.first().textContent();
    expect(listed).not.toContain('CompressedSamples');
    keepScreenshot('collection-study-list.png', await page.screenshot());
    await rows.first().click();
    await page.getByRole('button', { name: 'Basic Viewer' }).click();
    await page.waitForURL(`**/collections/${c.body.id}/viewer?StudyInstanceUIDs=2.25.*`);
    const { png, stats } = await waitForImage(page.locator('[data-cy="viewport-grid"] [data-viewport-uid]').first());
    keepScreenshot('collection-viewer.png', png);
    expect(stats.distinct).toBeGreaterThanOrEqual(REAL_IMAGE.minDistinct);
    expect(stats.lit).toBeGreaterThanOrEqual(REAL_IMAGE.minLit);
    expect(await page.content()).not.toContain('CompressedSamples');
    expect(problems).toEqual([]);
    await page.context().close();
  }, 180_000);

  it('a revoked share lands the viewer on a page saying so, not on the login page', async () => {
    const a = cairn.archive;
    const c = await a.request.post('/api/collections').send({ name: 'revoked in the viewer', studies: [CT_STUDY] });
    const s = await a.request.post(`/api/collections/${c.body.id}/shares`).send({ expiresInSeconds: 3600 });
    const { page } = await preparePage(browser, cairn.origin);
    await page.goto(new URL(s.body.link).pathname + new URL(s.body.link).hash);
    await page.waitForURL(`**/collections/${c.body.id}/`);
    await expect.poll(() => page.locator('tr[aria-selected]').count(), { timeout: 60_000 }).toBe(1);
    expect((await a.request.delete(`/api/collections/${c.body.id}/shares/${s.body.id}`)).status).toBe(200);
    await page.reload();
    await page.waitForURL(`**/collections/${c.body.id}/share-ended?next=*`, { timeout: 60_000 });
    await expect.poll(() => page.locator('#message').textContent(), { timeout: 30_000 }).toMatch(/This share link was revoked at .*Ask /);
    keepScreenshot('collection-share-revoked.png', await page.screenshot());
    await page.context().close();
  }, 180_000);

  it("a steward makes a collection from the study list's filter", async () => {
    const { page, problems } = await preparePage(browser, cairn.origin, STEWARD);
    await page.goto('/collections?modalities=CT');
    expect(await page.locator('#query').inputValue()).toBe('ModalitiesInStudy=CT');
    await page.locator('#preview-button').click();
    await expect.poll(() => page.locator('#preview').textContent(), { timeout: 30_000 }).toMatch(/^1 studies match/);
    await page.locator('#name').fill('CT from the list');
    await page.getByRole('button', { name: 'Create the collection' }).click();
    await expect.poll(() => page.locator('#create-status').textContent(), { timeout: 30_000 }).toContain('with 1 members');
    await expect.poll(() => page.locator('#detail-query').textContent(), { timeout: 30_000 }).toBe('Live query: ModalitiesInStudy=CT');
    await page.getByRole('button', { name: 'Freeze: take in no more studies' }).click();
    await expect.poll(() => page.locator('#detail-query').textContent(), { timeout: 30_000 }).toBe('Frozen query: ModalitiesInStudy=CT');
    await page.locator('#recipient').fill('Partner');
    await page.getByRole('button', { name: 'Share' }).click();
    await expect.poll(() => page.locator('#share-status').textContent(), { timeout: 30_000 }).toContain('/open#cairnshare_');
    await page.getByRole('button', { name: 'Revoke' }).click();
    await expect.poll(() => page.locator('#shares tbody').textContent(), { timeout: 30_000 }).toContain('revoked');
    keepScreenshot('steward-page.png', await page.screenshot({ fullPage: true }));
    expect(problems).toEqual([]);
    await page.context().close();
  }, 120_000);
});
