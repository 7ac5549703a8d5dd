import fs from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import type { Role } from '../../server/access.js';
import { hashPassword } from '../../server/auth/passwords.js';
import { saveUser } from '../../server/db/users.js';
import { createTestArchive, type ArchiveOverrides, type TestArchive } from '../helpers.js';

// Debian's Chromium, never a browser download (.ci/run installs it with apt).
export const CHROMIUM = '/usr/bin/chromium';
// The screenshots of the last run, kept for people to look at (git-ignored).
export const SCREENSHOTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'screenshots');

/**
 * Headless Chromium with software WebGL (SwiftShader through ANGLE): OHIF
 * draws with WebGL and, without it, shows a black viewport.
 */
export async function launchBrowser(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium), as .ci/run does`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--use-gl=angle', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist'],
  });
}

export interface RunningCairn {
  archive: TestArchive;
  origin: string;
  close(): Promise<void>;
}

/** Cairn on a free loopback port, over a fresh database, serving the OHIF build from viewer/ohif. */
export async function startCairn(overrides: ArchiveOverrides = {}): Promise<RunningCairn> {
  const archive = await createTestArchive(overrides);
  if (!fs.existsSync(path.join(archive.deps.config.viewerDir, 'index.html'))) {
    await archive.close();
    throw new Error(`the OHIF viewer is not installed in ${archive.deps.config.viewerDir}: run \`npm run fetch-viewer\``);
  }
  const server: Server = archive.app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    archive,
    origin,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await archive.close();
    },
  };
}

export interface Visitor {
  username: string;
  password: string;
  roles: Role[];
  clearances?: string[];
}

/** Adds the visitor as a local account of this Cairn (what `npm run user -- add` does). */
export async function addAccount(cairn: RunningCairn, v: Visitor): Promise<void> {
  await saveUser(cairn.archive.deps.db, {
    username: v.username,
    password_hash: await hashPassword(v.password, 4),
    roles: v.roles,
    clearances: v.clearances ?? [],
  });
}

/**
 * A fresh browser context and page, logged in as the visitor through the
 * login page (so OHIF's requests carry the session cookie), with
 * browser-side errors and failed requests collected for the assertions.
 */
export async function preparePage(browser: Browser, origin: string, visitor?: Visitor): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, baseURL: origin });
  const page = await context.newPage();
  if (visitor) {
    await page.goto('/login?next=/upload');
    await page.locator('#username').fill(visitor.username);
    await page.locator('#password').fill(visitor.password);
    await Promise.all([page.waitForURL('**/upload'), page.getByRole('button', { name: 'Log in' }).click()]);
  }
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // Every request OHIF makes of Cairn is expected to succeed.
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });
  return { page, problems };
}

export interface PixelStats {
  distinct: number;
  /** Share of pixels that are not near-black. */
  lit: number;
}

export function pixelStats(png: Buffer): PixelStats {
  const img = PNG.sync.read(png);
  const colours = new Set<number>();
  let lit = 0;
  const n = img.width * img.height;
  for (let i = 0; i < n * 4; i += 4) {
    const [r, g, b] = [img.data[i], img.data[i + 1], img.data[i + 2]];
    colours.add((r << 16) | (g << 8) | b);
    if (r + g + b > 60) lit++;
  }
  return { distinct: colours.size, lit: lit / n };
}

/** What counts as an image drawn in the viewport (see waitForImage). */
export const REAL_IMAGE = { minDistinct: 200, minLit: 0.1 };

/**
 * Waits until the viewport shows a real image: many distinct pixel values
 * over a good share of its area, which neither a black (no WebGL) viewport
 * nor an error or loading screen has (OHIF's not-found page: 388 colours, but
 * 0.5% of it lit; the sample images: 640–740 colours, 20–80% lit). Returns
 * the last screenshot and its stats.
 */
export async function waitForImage(viewport: Locator, timeoutMs = 60_000): Promise<{ png: Buffer; stats: PixelStats }> {
  const { minDistinct, minLit } = REAL_IMAGE;
  const deadline = Date.now() + timeoutMs;
  await viewport.waitFor({ state: 'visible', timeout: timeoutMs });
  for (;;) {
    const png = await viewport.screenshot();
    const stats = pixelStats(png);
    if ((stats.distinct >= minDistinct && stats.lit >= minLit) || Date.now() > deadline) return { png, stats };
    await new Promise((r) => setTimeout(r, 500));
  }
}

export function keepScreenshot(name: string, png: Buffer): void {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  fs.writeFileSync(path.join(SCREENSHOTS, name), png);
}

/**
 * Opens a study from OHIF's study list as a user would: the list at `/`,
 * the row showing `rowText` (the study's modality, say), then the Basic
 * Viewer; resolves with the first viewport once the viewer shows the study.
 */
export async function openFromStudyList(page: Page, studyUid: string, rowText: string): Promise<Locator> {
  await page.goto('/');
  const row = page.locator('tr[aria-selected]').filter({ hasText: rowText });
  await row.first().waitFor({ state: 'visible', timeout: 60_000 });
  await row.first().click();
  await page.getByRole('button', { name: 'Basic Viewer' }).click();
  await page.waitForURL(`**/viewer?StudyInstanceUIDs=${studyUid}`);
  return page.locator('[data-cy="viewport-grid"] [data-viewport-uid]').first();
}
