import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import type { TestProject } from 'vitest/node';
import { connect, migrate, startEmbeddedPostgres } from '../server/db/knex.js';

// One real PostgreSQL for the whole run (the embedded one), with a migrated
// template database; every test file clones it into a database of its own.
declare module 'vitest' {
  export interface ProvidedContext {
    pgBaseUrl: string;
  }
}

/** A port on loopback that nothing listens on (for servers the tests start). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export default async function setup(project: TestProject) {
  const teardown = await showingFailures('set-up', () => prepare(project));
  return () => showingFailures('tear-down', teardown);
}

/**
 * Runs a stage of the set-up, writing any failure out at once and whole
 * (its cause included) before passing it on. vitest says nothing useful on
 * its own: an error thrown outside the stage's promise (an 'error' event of
 * a child process, say) ends the run after its RUN line and nothing else,
 * and a rejection without a reason prints "undefined".
 */
export async function showingFailures<T>(stage: string, run: () => Promise<T>): Promise<T> {
  let escaped: (err: unknown) => void = () => {};
  const escapes = new Promise<never>((_, reject) => (escaped = reject));
  process.prependListener('uncaughtException', escaped);
  process.prependListener('unhandledRejection', escaped);
  try {
    return await Promise.race([run(), escapes]);
  } catch (err) {
    const what = err === undefined ? 'a failure without a reason (undefined)' : inspect(err, { depth: 4 });
    fs.writeSync(2, `\nThe test ${stage} (test/global-setup.ts) failed: ${what}\n\n`);
    throw err;
  } finally {
    process.off('uncaughtException', escaped);
    process.off('unhandledRejection', escaped);
  }
}

async function prepare(project: TestProject): Promise<() => Promise<void>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-test-pg-'));
  const pg = await startEmbeddedPostgres(path.join(dir, 'pg'), await freePort(), () => {});
  const admin = connect(pg.url, 2);
  await admin.raw('create database cairn_template');
  await admin.destroy();
  const templateUrl = pg.url.replace(/\/cairn$/, '/cairn_template');
  const tdb = connect(templateUrl, 1);
  await migrate(tdb);
  await tdb.destroy();
  project.provide('pgBaseUrl', pg.url.replace(/\/cairn$/, ''));
  return async () => {
    await pg.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
}
