import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDimse, type DimseListener } from '../../server/dimse/listener.js';
import { dcmtk } from '../dimse/harness.js';
import { fixturesDir } from '../helpers.js';
import {
  addAccount,
  keepScreenshot,
  launchBrowser,
  openFromStudyList,
  preparePage,
  REAL_IMAGE,
  startCairn,
  waitForImage,
  type RunningCairn,
  type Visitor,
} from './browser.js';

// The DIMSE round trip a modality makes, end to end: an AE registered by an
// administrator through /api/aes, a study sent by DCMTK's storescu to
// Cairn's DIMSE listener, found by QIDO-RS, and drawn by OHIF in a real
// (headless Debian) Chromium for a clinician logged in through the login page.
const CT_STUDY = '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322';
const CLINICIAN: Visitor = { username: 'dr-dimse', password: 'e2e-password-dimse', roles: ['clinician'] };

let browser: Browser;
let cairn: RunningCairn;
let dimse: DimseListener;

beforeAll(async () => {
  [browser, cairn] = await Promise.all([launchBrowser(), startCairn()]);
  const deps = cairn.archive.deps;
  // The listener beside the HTTP server, over the same database and blob store, its AEs from the aes table.
  const config = Object.freeze({ ...deps.config, dimse: { ...deps.config.dimse, port: 0, host: '127.0.0.1', aesSource: 'database' as const } });
  dimse = await startDimse({ ...deps, config });
  await addAccount(cairn, CLINICIAN);
}, 120_000);

afterAll(async () => {
  await dimse?.close(1000);
  await browser?.close();
  await cairn?.close();
});

describe('a study stored by C-STORE, in the viewer', () => {
  it('is stored by storescu from an AE registered through /api/aes, found by QIDO and drawn by OHIF', async () => {
    const registered = await cairn.archive.request.put('/api/aes/CT_ROOM_1').send({ host: '127.0.0.1', roles: ['uploader'] });
    expect(registered.status).toBe(201);
    const sent = await dcmtk('storescu', ['-aet', 'CT_ROOM_1', '-aec', 'CAIRN', '127.0.0.1', String(dimse.port), path.join(fixturesDir, 'CT_small.dcm')]);
    expect(sent.stderr).toBe('');
    expect(sent.code).toBe(0);

    const found = await cairn.archive
      .as({ roles: ['clinician'] })
      .get('/dicom-web/studies')
      .query({ StudyInstanceUID: CT_STUDY });
    expect(found.status).toBe(200);
    expect(found.body.map((s: Record<string, { Value: string[] }>) => s['0020000D'].Value[0])).toEqual([CT_STUDY]);

    const { page, problems } = await preparePage(browser, cairn.origin, CLINICIAN);
    const viewport = await openFromStudyList(page, CT_STUDY, 'CT');
    const { png, stats } = await waitForImage(viewport);
    keepScreenshot('dimse-viewer-ct.png', png);
    expect(stats.distinct, 'distinct colours in the viewport').toBeGreaterThanOrEqual(REAL_IMAGE.minDistinct);
    expect(stats.lit, 'share of lit pixels in the viewport').toBeGreaterThanOrEqual(REAL_IMAGE.minLit);
    expect(problems).toEqual([]);
    await page.context().close();
  }, 180_000);
});
