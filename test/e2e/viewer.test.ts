import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCaller } from '../../server/access.js';
import { storeInstance } from '../../server/archive.js';
import { ADMIN, fixturesDir, sample } from '../helpers.js';
import { replaceLabels } from '../../server/db/labels.js';
import {
  addAccount,
  keepScreenshot,
  launchBrowser,
  preparePage,
  REAL_IMAGE,
  SCREENSHOTS,
  startCairn,
  waitForImage,
  type RunningCairn,
  type Visitor,
} from './browser.js';

// OHIF in a real (headless Debian) Chromium against a Cairn started here,
// logged in through the login page: the study list, images drawn in the
// viewport, a labelled study hidden from a user without clearance, logout,
// and the upload page. Screenshots of the last run stay in test/e2e/screenshots/.
const STUDIES = {
  ct: { uid: '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322', files: ['CT_small.dcm'] },
  mr: { uid: '1.3.6.1.4.1.5962.1.2.4.20040826185059.5457', files: ['MR_small.dcm'] },
  // JPEG Extended and JPEG 2000 frames, sent as stored and decoded by OHIF.
  jpeg: { uid: '1.3.6.1.4.1.5962.1.2.8.20040826185059.5457', files: ['JPEG-lossy.dcm', 'JPEG2000.dcm'] },
  rle: { uid: '1.2.826.0.1.3680043.8.498.12406831542731051035295345080039845114', files: ['SC_rgb_rle_2frame.dcm'] },
};
/** The JPEG study's one series, and the SOP Instance UID of its JPEG-lossy.dcm. */
const JPEG_SERIES = '1.3.6.1.4.1.5962.1.3.8.1.20040826185059.5457';
const JPEG_12_BIT = '1.3.6.1.4.1.5962.1.1.8.1.5.20040826185059.5457';

// The RLE study carries the "vip" label: the clinician is cleared for it, the researcher is not.
const CLINICIAN: Visitor = { username: 'dr-grey', password: 'e2e-password-clinician', roles: ['clinician'], clearances: ['vip'] };
const RESEARCHER: Visitor = { username: 'researcher', password: 'e2e-password-researcher', roles: ['researcher'] };
const UPLOADER: Visitor = { username: 'uploader', password: 'e2e-password-uploader', roles: ['uploader'] };

let browser: Browser;
let cairn: RunningCairn;

beforeAll(async () => {
  fs.rmSync(SCREENSHOTS, { recursive: true, force: true });
  [browser, cairn] = await Promise.all([launchBrowser(), startCairn()]);
  const store = { ...cairn.archive.deps, log: () => undefined };
  const loader = newCaller(ADMIN, { protocol: 'cli', command: 'e2e' });
  for (const s of Object.values(STUDIES)) {
    for (const f of s.files) expect(await storeInstance(store, loader, Readable.from([sample(f)]))).toMatchObject({ ok: true, studyUid: s.uid });
  }
  await replaceLabels(cairn.archive.deps.db, { studyUid: STUDIES.rle.uid }, ['vip']);
  for (const v of [CLINICIAN, RESEARCHER]) await addAccount(cairn, v);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await cairn?.close();
});

async function expectDrawn(page: Page, shot: string, thumbnailLoads = true) {
  const viewport = page.locator('[data-cy="viewport-grid"] [data-viewport-uid]').first();
  const { png, stats } = await waitForImage(viewport);
  // First-run dialogs are off in the generated config (OHIF shows both otherwise).
  expect(await page.locator('.shepherd-element').count(), 'onboarding tour').toBe(0);
  expect(await page.getByText('for investigational use only').count(), 'investigational-use banner').toBe(0);
  keepScreenshot(shot, png);
  keepScreenshot(shot.replace('.png', '-page.png'), await page.screenshot());
  expect(stats.distinct, `distinct colours in the viewport (${shot})`).toBeGreaterThanOrEqual(REAL_IMAGE.minDistinct);
  expect(stats.lit, `share of lit pixels in the viewport (${shot})`).toBeGreaterThanOrEqual(REAL_IMAGE.minLit);
  if (!thumbnailLoads) return;
  // Series thumbnails are the server's /thumbnail images, which OHIF loads as <img src> with the session cookie.
  const thumbnails = page.locator('[data-cy="study-browser-thumbnail"] img[src*="/thumbnail"]');
  await expect
    .poll(() => thumbnails.evaluateAll((imgs) => imgs.filter((i) => (i as HTMLImageElement).naturalWidth > 0).length), { timeout: 30_000 })
    .toBeGreaterThan(0);
}

describe('viewer in a browser', () => {
  it('lists the stored studies and opens one from the list', async () => {
    const { page, problems } = await preparePage(browser, cairn.origin, CLINICIAN);
    await page.goto('/');
    const rows = page.locator('tr[aria-selected]');
    await expect.poll(() => rows.count(), { timeout: 60_000 }).toBe(Object.keys(STUDIES).length);
    expect(await page.evaluate(() => self.crossOriginIsolated)).toBe(true);
    await page.locator('[data-cy="cairn-upload"]').waitFor();
    keepScreenshot('study-list.png', await page.screenshot());

    // The patient filter is a QIDO wildcard query.
    await page.locator('tr[data-filter-row] input').first().fill('Lestrade');
    await expect.poll(() => rows.count(), { timeout: 30_000 }).toBe(1);
    await page.locator('tr[data-filter-row] input').first().fill('');
    await expect.poll(() => rows.count(), { timeout: 30_000 }).toBe(Object.keys(STUDIES).length);

    await rows.filter({ hasText: 'CT' }).click();
    await page.getByRole('button', { name: 'Basic Viewer' }).click();
    await page.waitForURL(`**/viewer?StudyInstanceUIDs=${STUDIES.ct.uid}`);
    await expectDrawn(page, 'viewer-ct.png');
    expect(problems).toEqual([]);
    await page.context().close();
  }, 120_000);

  it.each([
    ['MR', 'mr'],
    ['JPEG and JPEG 2000', 'jpeg'],
    ['RLE colour', 'rle'],
  ] as const)(
    'draws the %s study opened by its URL',
    async (_what, key) => {
      const { page, problems } = await preparePage(browser, cairn.origin, CLINICIAN);
      await page.goto(`/viewer?StudyInstanceUIDs=${STUDIES[key].uid}`);
      await expectDrawn(page, `viewer-${key}.png`, key !== 'jpeg');
      if (key === 'jpeg') {
        // OHIF asks the thumbnail of its series' middle instance, JPEG-lossy.dcm: 12-bit JPEG Extended (process 4).
        const series = `/dicom-web/studies/${STUDIES.jpeg.uid}/series/${JPEG_SERIES}`;
        const thumbnail = await page.request.get(`${series}/instances/${JPEG_12_BIT}/thumbnail?accept=image/jpeg`);
        expect(thumbnail.status()).toBe(200);
        expect(thumbnail.headers()['content-type']).toBe('image/jpeg');
      }
      expect(problems).toEqual([]);
      await page.context().close();
    },
    120_000,
  );

  it('hides a labelled study from a user without clearance, in the list and at its URL', async () => {
    const { page } = await preparePage(browser, cairn.origin, RESEARCHER);
    await page.goto('/');
    const rows = page.locator('tr[aria-selected]');
    await expect.poll(() => rows.count(), { timeout: 60_000 }).toBe(Object.keys(STUDIES).length - 1);
    expect(await rows.filter({ hasText: 'Lestrade' }).count()).toBe(0);
    keepScreenshot('study-list-researcher.png', await page.screenshot());
    await page.goto(`/viewer?StudyInstanceUIDs=${STUDIES.rle.uid}`);
    await page.getByText('not available').waitFor({ timeout: 60_000 });
    keepScreenshot('viewer-not-found.png', await page.screenshot());
    await page.context().close();
  }, 120_000);

  it('logs out from the viewer header, after which the viewer sends the browser to the login page', async () => {
    const { page } = await preparePage(browser, cairn.origin, CLINICIAN);
    await page.goto('/');
    await page.locator('[data-cy="cairn-logout"]').click();
    await page.waitForURL('**/login');
    expect((await page.context().cookies()).filter((c) => c.name === 'cairn_session' && c.value)).toEqual([]);
    await page.goto('/');
    await page.waitForURL('**/login?next=%2F', { timeout: 60_000 });
    await page.context().close();
  }, 120_000);

  it('sends a browser without a session to the login page', async () => {
    const { page } = await preparePage(browser, cairn.origin);
    await page.goto(`/viewer?StudyInstanceUIDs=${STUDIES.ct.uid}`);
    await page.waitForURL(`**/login?next=${encodeURIComponent(`/viewer?StudyInstanceUIDs=${STUDIES.ct.uid}`)}`, { timeout: 60_000 });
    keepScreenshot('login.png', await page.screenshot());
    await page.context().close();
  }, 120_000);
});

describe('upload page in a browser', () => {
  let empty: RunningCairn;
  beforeAll(async () => {
    empty = await startCairn();
    await addAccount(empty, UPLOADER);
  });
  afterAll(async () => {
    await empty?.close();
  });

  it('stores a folder of sample files and shows each result', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-e2e-upload-'));
    const folder = path.join(dir, 'samples');
    fs.cpSync(fixturesDir, folder, { recursive: true });
    try {
      const { page, problems } = await preparePage(browser, empty.origin, UPLOADER);
      await page.goto('/upload');
      await page.locator('#pick-folder').setInputFiles(folder);
      await page.locator('body[data-done="true"]').waitFor({ timeout: 60_000 });
      keepScreenshot('upload.png', await page.screenshot({ fullPage: true }));
      const results: Record<string, string> = Object.fromEntries(
        await page
          .locator('#files tr')
          .evaluateAll((rows) => rows.map((r) => [r.querySelector('.name')!.textContent!.replace(/^samples\//, ''), (r as HTMLElement).dataset.status!])),
      );
      const names = fs.readdirSync(folder);
      expect(Object.keys(results).sort()).toEqual(names.sort());
      expect(results['README.md']).toBe('rejected');
      // MR_small_implicit.dcm is MR_small.dcm's SOP Instance in other bytes:
      // whichever arrives second is refused and the first kept.
      const mr = [results['MR_small.dcm'], results['MR_small_implicit.dcm']].sort();
      expect(mr).toEqual(['rejected', 'stored']);
      for (const f of names.filter((n) => n.endsWith('.dcm') && !n.startsWith('MR_small'))) expect(results[f], f).toBe('stored');
      expect(problems).toEqual([]);
      await page.context().close();
      const qido = await empty.archive.request.get('/dicom-web/studies');
      expect(qido.body).toHaveLength(new Set(Object.values(STUDIES).map((s) => s.uid)).size + 4);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
