import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dcmtk, dimseArchive } from './harness.js';

// `npm run ae`, run as the child process it is, against this test's own
// database, whose listener reads the `aes` table at every association.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function ae(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'server/cli/ae.ts', ...args],
      { cwd: root, env: { ...process.env, LOG_LEVEL: 'warn', DATABASE_URL: a.dbUrl, DATA_DIR: a.deps.config.dataDir, ...extraEnv } },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

let a: Awaited<ReturnType<typeof dimseArchive>>;
beforeAll(async () => {
  a = await dimseArchive([], {}, { aesSource: 'database', aesRefreshSeconds: 0 });
});
afterAll(async () => {
  await a?.close();
});

const echo = (title: string) => dcmtk('echoscu', ['-aet', title, '-aec', 'CAIRN', '127.0.0.1', String(a.port)]);

describe('npm run ae', () => {
  it('adds an AE that may then associate, changes it, lists it and removes it, each change audited', async () => {
    const add = await ae(['add', 'CT1', '--host', '127.0.0.1', '--port', '104', '--roles', 'uploader']);
    expect(add.code, add.stderr).toBe(0);
    expect(await a.deps.db('aes').where({ title: 'CT1' }).first()).toMatchObject({
      host: '127.0.0.1',
      port: 104,
      roles: ['uploader'],
      move_destination: false,
    });
    expect((await echo('CT1')).code).toBe(0);
    const set = await ae(['set', 'CT1', '--roles', 'uploader,clinician', '--clearances', 'vip', '--move-destination']);
    expect(set.code, set.stderr).toBe(0);
    const list = await ae(['list']);
    expect(list.stdout).toContain('CT1\thost=127.0.0.1\tport=104\troles=uploader,clinician\tclearances=vip\tmove-destination=yes');
    expect((await ae(['remove', 'CT1'])).code).toBe(0);
    expect((await echo('CT1')).code).not.toBe(0);
    const rows = await a.deps.db('audit_events').where({ action: 'ae-change', protocol: 'cli' }).orderBy('id');
    expect(rows.map((r) => [r.detail.command, r.detail.change, r.detail.title])).toEqual([
      ['ae add', 'add', 'CT1'],
      ['ae set', 'set', 'CT1'],
      ['ae remove', 'remove', 'CT1'],
    ]);
    expect(rows[1].detail.after).toMatchObject({ roles: ['uploader', 'clinician'], clearances: ['vip'], moveDestination: true });
  });

  it('refuses a bad host, port, role or option with a message, and stores nothing', async () => {
    const cases: [string[], RegExp][] = [
      [['add', 'CT2', '--host', 'ct.example.org'], /host: must be an IPv4 or IPv6 address/],
      [['add', 'CT2', '--port', '70000'], /port/],
      [['add', 'CT2', '--roles', 'boss'], /roles/],
      [['add', 'CT2', '--role', 'uploader'], /--role/],
    ];
    for (const [args, message] of cases) {
      const r = await ae(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    expect(await a.deps.db('aes').select('title')).toEqual([]);
  });

  it('refuses to add an AE twice, or to change one that is not registered', async () => {
    expect((await ae(['add', 'CT3'])).code).toBe(0);
    const again = await ae(['add', 'CT3', '--roles', 'admin']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/exists/);
    expect(await a.deps.db('aes').where({ title: 'CT3' }).first()).toMatchObject({ roles: [] });
    const missing = await ae(['set', 'NOBODY', '--roles', 'uploader']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no AE NOBODY/);
  });

  it('imports a registry in the DIMSE_AES form into the table, all of it or nothing', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-ae-import-'));
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(
      bad,
      JSON.stringify([
        { title: 'CT5', roles: ['uploader'] },
        { title: 'WS5', host: 'ws5.example.org', port: 104 },
      ]),
    );
    const refused = await ae(['import', bad]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/nothing imported: WS5: host: must be an IPv4 or IPv6 address/);
    expect(await a.deps.db('aes').whereIn('title', ['CT5', 'WS5'])).toEqual([]);
    const good = path.join(dir, 'aes.json');
    fs.writeFileSync(
      good,
      JSON.stringify([
        { title: 'CT5', host: '10.1.2.5', roles: ['uploader'] },
        { title: 'WS5', host: '10.1.5.5', port: 11112, roles: ['clinician'], clearances: ['vip'] },
        { title: '*', roles: ['clinician'] },
      ]),
    );
    const r = await ae(['import', good]);
    expect(r.code, r.stderr).toBe(0);
    const rows = await a.deps.db('aes').whereIn('title', ['CT5', 'WS5', '*']).orderBy('title').select('title', 'host', 'port', 'roles', 'move_destination');
    expect(rows).toEqual([
      { title: '*', host: null, port: null, roles: ['clinician'], move_destination: false },
      { title: 'CT5', host: '10.1.2.5', port: null, roles: ['uploader'], move_destination: false },
      { title: 'WS5', host: '10.1.5.5', port: 11112, roles: ['clinician'], move_destination: true },
    ]);
    const audit = await a.deps.db('audit_events').where({ action: 'ae-change' }).whereRaw(`detail->>'command' = 'ae import'`);
    expect(audit.map((row) => row.detail.title).sort()).toEqual(['*', 'CT5', 'WS5']);
    await a.deps.db('aes').where({ title: '*' }).del();
  });

  it('warns that an AE whose roles read through a de-identified view is served de-identified data over DIMSE', async () => {
    const add = await ae(['add', 'RSCH1', '--roles', 'researcher']);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stderr).toMatch(/warning: AE RSCH1: .*de-identified view.*C-GET and C-MOVE send de-identified data/);
    const set = await ae(['set', 'RSCH1', '--roles', 'researcher,clinician']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stderr).not.toMatch(/de-identified/);
    expect((await ae(['set', 'RSCH1', '--roles', 'researcher'])).stderr).toMatch(/warning: AE RSCH1/);
    expect((await ae(['remove', 'RSCH1'])).code).toBe(0);
  });

  it('with DIMSE_AES set, lists the configured AEs and changes nothing', async () => {
    const env = { DIMSE_AES: '[{"title":"PACS","host":"10.0.0.9","port":104,"roles":["uploader"]}]' };
    const add = await ae(['add', 'CT4'], env);
    expect(add.code).toBe(2);
    expect(add.stderr).toMatch(/DIMSE_AES/);
    expect(await a.deps.db('aes').where({ title: 'CT4' }).first()).toBeUndefined();
    const list = await ae(['list'], env);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain('PACS\thost=10.0.0.9\tport=104\troles=uploader\tclearances=\tmove-destination=yes');
  });
});
