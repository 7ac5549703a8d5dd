import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { connect, migrate, startEmbeddedPostgres } from '../server/db/knex.js';

// One real PostgreSQL for the whole run (the embedded one), with a migrated
// template database; every test file clones it into a database of its own.
declare module 'vitest' {
  export interface ProvidedContext {
    pgBaseUrl: string;
  }
}

async function freePort(): Promise<number> {
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
