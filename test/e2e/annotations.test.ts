import { Readable } from 'node:stream';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCaller } from '../../server/access.js';
import { storeInstance } from '../../server/archive.js';
import { DERIVED_SOP_CLASSES } from '../../server/dicom/derived.js';
import { ADMIN, sample } from '../helpers.js';
import { addAccount, keepScreenshot, launchBrowser, preparePage, startCairn, waitForImage, type RunningCairn, type Visitor } from './browser.js';

// A reader measures in the bundled OHIF and saves the report: OHIF's
// measurement tracking ("Track measurements for this series?", then
// "Create SR") stores a DICOM SR with STOW-RS into the study on the screen,
// which Cairn takes from a clinician (server/archive.ts) with the session's
// CSRF token the viewer script adds (viewer/app-config.ts). After a reload
// the report is listed in the study and, opened, shows the measurement again.

const CT = '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322';
const READER: Visitor = { username: 'dr-measure', password: 'e2e-password-reader', roles: ['clinician'] };
const REPORT_NAME = 'Canal width';
const JSON_ACCEPT = { Accept: 'application/dicom+json' };

let browser: Browser;
let cairn: RunningCairn;

beforeAll(async () => {
  [browser, cairn] = await Promise.all([launchBrowser(), startCairn()]);
  const store = { ...cairn.archive.deps, log: () => undefined };
  const loader = newCaller(ADMIN, { protocol: 'cli', command: 'e2e' });
  expect(await storeInstance(store, loader, Readable.from([sample('CT_small.dcm')]))).toMatchObject({ ok: true, studyUid: CT });
  await addAccount(cairn, READER);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await cairn?.close();
});

/** The first length the viewport shows (the Length tool's label, "27.64 mm"), in mm. */
async function shownLength(viewport: Locator): Promise<number | undefined> {
  const m = /(\d+(?:\.\d+)?) mm/.exec((await viewport.textContent()) ?? '');
  return m ? Number(m[1]) : undefined;
}

/** The first numeric measurement (NUM content item, PS3.3 §C.17.3) of a stored report, as its metadata gives it. */
async function storedLength(page: Page, metadataUrl: string): Promise<number> {
  const res = await page.request.get(metadataUrl, { headers: JSON_ACCEPT });
  expect(res.status()).toBe(200);
  type Item = Record<string, { Value?: unknown[] }>;
  const find = (items: unknown[] | undefined): number | undefined => {
    for (const it of (items ?? []) as Item[]) {
      const measured = it['0040A300']?.Value?.[0] as Item | undefined;
      const value = measured?.['0040A30A']?.Value?.[0];
      if (it['0040A040']?.Value?.[0] === 'NUM' && value !== undefined) return Number(value);
      const nested = find(it['0040A730']?.Value);
      if (nested !== undefined) return nested;
    }
    return undefined;
  };
  const [report] = (await res.json()) as Item[];
  const length = find(report['0040A730']?.Value);
  expect(length, 'the report holds no NUM content item').toBeDefined();
  return length as number;
}

/** Longer than the drag's first short move can make on this CT (0.66 mm pixels), shorter than the whole drag. */
const MIN_LENGTH_MM = 15;

/** Draws a length with OHIF's Length tool: a drag from one point of the image to another. */
async function drawLength(page: Page, viewport: Locator): Promise<void> {
  await page.locator('[data-cy="Length-btn"]').click();
  const box = await viewport.boundingBox();
  if (!box) throw new Error('the viewport has no box');
  const at = (fx: number, fy: number) => [box.x + box.width * fx, box.y + box.height * fy] as const;
  await page.mouse.move(...at(0.4, 0.4));
  await page.mouse.down();
  // One short move starts the drag, one long move ends it: the text shows a short length or the final one, nothing between.
  await page.mouse.move(...at(0.41, 0.41));
  await page.mouse.move(...at(0.6, 0.6));
  await page.mouse.up();
}

describe('a measurement saved from the viewer', () => {
  it('is stored as an SR in the study, listed after a reload, and shown again', async () => {
    const { page, problems } = await preparePage(browser, cairn.origin, READER);
    await page.goto(`/viewer?StudyInstanceUIDs=${CT}`);
    const viewport = page.locator('[data-cy="viewport-grid"] [data-viewport-uid]').first();
    await waitForImage(viewport);

    await drawLength(page, viewport);
    // The text follows the drag a few frames behind; the short first move's length is far below the final one's.
    await expect.poll(() => shownLength(viewport), { timeout: 30_000 }).toBeGreaterThan(MIN_LENGTH_MM);
    const drawn = (await shownLength(viewport)) as number;
    keepScreenshot('annotation-drawn.png', await page.screenshot());

    // Measurement tracking: track this series, then "Create SR" in the measurements panel.
    await page.locator('[data-cy="prompt-begin-tracking-yes-btn"]').click({ timeout: 30_000 });
    const createSr = page.getByRole('button', { name: 'Create SR' });
    if (!(await createSr.isVisible())) await page.locator('[data-cy="trackedMeasurements-btn"]').click();
    await createSr.click({ timeout: 30_000 });
    await page.getByPlaceholder('Report name').fill(REPORT_NAME);
    const [stow] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname.startsWith('/dicom-web/studies'), { timeout: 60_000 }),
      page.getByRole('button', { name: 'Save' }).click(),
    ]);
    expect(stow.status(), await stow.text()).toBe(200);
    expect(stow.request().headers()['x-csrf-token']).toBeTruthy();
    await page.getByText('Measurements saved successfully').waitFor({ timeout: 30_000 });
    keepScreenshot('annotation-saved.png', await page.screenshot());

    // The report is an instance of a new SR series of the study (QIDO, as the reader).
    const series = await page.request.get(`/dicom-web/studies/${CT}/series?Modality=SR`, { headers: JSON_ACCEPT });
    expect(series.status()).toBe(200);
    const found = (await series.json()) as Record<string, { Value?: unknown[] }>[];
    expect(found.map((s) => s['0008103E']?.Value?.[0])).toEqual([REPORT_NAME]);
    const seriesUid = found[0]['0020000E']?.Value?.[0] as string;
    const instances = await page.request.get(`/dicom-web/studies/${CT}/series/${seriesUid}/instances`, { headers: JSON_ACCEPT });
    const [report] = (await instances.json()) as Record<string, { Value?: unknown[] }>[];
    const sopClass = report['00080016']?.Value?.[0] as string;
    expect(DERIVED_SOP_CLASSES[sopClass]).toMatch(/SR Storage$/);
    const sopInstanceUid = report['00080018']?.Value?.[0] as string;
    const audit = await cairn.archive.deps.db('audit_events').where('action', 'store').whereRaw('? = any(instance_uids)', [sopInstanceUid]).first();
    expect(audit).toMatchObject({ sub: READER.username, outcome: 'success' });
    expect(audit.detail.derived).toEqual([{ sopInstanceUid, sopClass: DERIVED_SOP_CLASSES[sopClass], seriesUid, studyUid: CT }]);

    // After a reload the study browser lists the report; opened, it draws the same length on the image.
    await page.reload();
    await waitForImage(viewport);
    const listed = page.locator('[data-cy="studyBrowser-panel"]').getByText(REPORT_NAME);
    await listed.waitFor({ timeout: 60_000 });
    expect(await shownLength(viewport)).toBeUndefined();
    await listed.dblclick();
    // The length the report holds (its NUM content item, in mm) is what the viewer must draw again. The text is
    // polled until it shows it: the viewer redraws the annotation as the report loads, and an early read can
    // catch a frame of that.
    const stored = await storedLength(page, `/dicom-web/studies/${CT}/series/${seriesUid}/instances/${sopInstanceUid}/metadata`);
    expect(Math.abs(stored - drawn), `stored ${stored} mm, drawn ${drawn} mm`).toBeLessThan(0.1);
    await expect.poll(async () => Math.abs(((await shownLength(viewport)) ?? Number.POSITIVE_INFINITY) - stored), { timeout: 60_000 }).toBeLessThan(0.1);
    keepScreenshot('annotation-reloaded.png', await page.screenshot());
    expect(problems).toEqual([]);
    await page.context().close();
  }, 240_000);
});
