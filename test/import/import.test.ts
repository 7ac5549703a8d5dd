import { execFile, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveUser } from '../../server/db/users.js';
import { stateFileFor } from '../../server/import/state.js';
import { createTestArchive, type TestArchive } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';

// npm run import, run as the child process it is, against this test's own
// database and blob store, over folders made from the shared samples, a
// DICOMDIR written by dcmtk's dcmmkdir, and files that are not DICOM. Each
// run starts a Node process with tsx, which takes seconds on a busy machine:
// the tests that run it have a longer time limit.
const CLI_TIMEOUT = 240_000;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const samples = '/work/shared/dicom-samples';
const SCRIPT = 'server/cli/import.ts';

let a: TestArchive;
let work: string;

function toolEnv(): NodeJS.ProcessEnv {
  const c = a.deps.config;
  const s3 =
    c.storage === 's3'
      ? { S3_ENDPOINT: c.s3.endPoint, S3_PORT: String(c.s3.port), S3_BUCKET: c.s3.bucket, S3_ACCESS_KEY: c.s3.accessKey, S3_SECRET_KEY: c.s3.secretKey }
      : {};
  return { PATH: process.env.PATH, DATABASE_URL: a.dbUrl, DATA_DIR: c.dataDir, STORAGE: c.storage, LOG_LEVEL: 'silent', ...s3 };
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  summary: Record<string, number | boolean>;
}

function summaryOf(stdout: string): Record<string, number | boolean> {
  const last = stdout.trim().split('\n').pop() ?? '';
  return last.startsWith('{') ? JSON.parse(last) : {};
}

function importCli(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', SCRIPT, ...args], { cwd: root, env: toolEnv(), timeout: 200_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code, stdout, stderr, summary: summaryOf(stdout) });
    });
  });
}

function copySample(name: string, to: string): void {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.writeFileSync(to, fs.readFileSync(path.join(samples, name)));
}

/**
 * A disc as a migration finds it: a DICOMDIR (written by dcmmkdir) naming
 * four files in DATA/ST1, three more instances beside it that it does not
 * name, and two files that are not DICOM.
 */
function makeDisc(dir: string): void {
  for (const [i, s] of ['CT_small.dcm', 'MR_small.dcm', 'chrGerm.dcm', 'test-SR.dcm'].entries()) copySample(s, path.join(dir, 'DATA', 'ST1', `IM${i + 1}`));
  const mk = spawnSync('dcmmkdir', ['--recurse', '--invent', 'DATA'], { cwd: dir, encoding: 'utf8' });
  expect(fs.existsSync(path.join(dir, 'DICOMDIR')), `${mk.stdout}${mk.stderr}`).toBe(true);
  copySample('JPEG2000.dcm', path.join(dir, 'JPEG2000.dcm'));
  copySample('SC_rgb_rle_2frame.dcm', path.join(dir, 'more', 'rle.dcm'));
  copySample('chrJapMulti.dcm', path.join(dir, 'more', 'jap'));
  fs.writeFileSync(path.join(dir, 'README.txt'), 'burnt by the old PACS on 2009-04-01\n');
  // Long enough to hold a preamble, but without "DICM" at byte 128.
  fs.writeFileSync(path.join(dir, 'more', 'thumbs.db'), Buffer.alloc(400, 7));
}

const DISC_UIDS = [
  '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322', // CT_small
  '1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457', // MR_small
  '1.3.6.1.4.1.5962.1.1.0.1.1.1175775772.5723.0', // chrGerm
  '1.2.276.0.7230010.3.1.4.2139363186.7819.982086466.4', // test-SR
  '1.3.6.1.4.1.5962.1.1.8.1.3.20040826185059.5457', // JPEG2000
  '1.2.826.0.1.3680043.8.498.49043964482360854182530167603505525116', // SC_rgb_rle_2frame
  '1.3.51.0.7.11267079384.54094.16836.47802.41082.29308.17462', // chrJapMulti (its File Meta Information says …17461)
];

beforeAll(async () => {
  a = await createTestArchive();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-import-'));
  makeDisc(path.join(work, 'disc'));
});
afterAll(async () => {
  await a?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

async function instancesInQido(): Promise<string[]> {
  const r = await a.request.get('/dicom-web/instances').query({ limit: 1000 });
  expect(r.status).toBeLessThan(300);
  return (r.status === 204 ? [] : (r.body as Record<string, { Value: string[] }>[])).map((x) => x['00080018'].Value[0]);
}

describe('npm run import over a disc with a DICOMDIR', { timeout: CLI_TIMEOUT }, () => {
  let first: Run;
  beforeAll(async () => {
    first = await importCli([path.join(work, 'disc'), '--progress-seconds', '1']);
  }, CLI_TIMEOUT);

  it('stores every instance, those the DICOMDIR names and those beside it, and exits 0', async () => {
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.summary).toMatchObject({ files: 9, stored: 7, alreadyPresent: 0, skipped: 2, failed: 0, dicomdirs: 1, interrupted: false });
    expect((await instancesInQido()).sort()).toEqual([...DISC_UIDS].sort());
  });

  it('lists each file that is not DICOM with its reason, and the DICOMDIR is not stored', () => {
    expect(first.stdout).toContain(
      `skipped\t${path.join(work, 'disc', 'README.txt')}\tnot a DICOM file: 36 bytes, shorter than the Part-10 preamble and prefix`,
    );
    expect(first.stdout).toContain(`skipped\t${path.join(work, 'disc', 'more', 'thumbs.db')}\tnot a DICOM Part-10 file: no "DICM" at byte 128`);
    expect(first.stdout).not.toContain('DICOMDIR\t');
  });

  it('prints plain progress lines when stderr is not a terminal', () => {
    expect(first.stderr).toMatch(
      /progress: 9\/9 files, [\d.]+\/[\d.]+ MB, [\d.]+ files\/s [\d.]+ MB\/s, ETA \w+ \(stored 7, already present 0, skipped 2, failed 0\)/,
    );
  });

  it('audits the stores as the import principal over protocol cli, naming the instances', async () => {
    const rows = await a.deps.db('audit_events').where({ protocol: 'cli' }).orderBy('id');
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r).toMatchObject({ sub: 'cairn-import', roles: ['uploader'], action: 'store', outcome: 'success', client: null });
    expect(rows[0].detail).toMatchObject({ command: 'import', osUser: os.userInfo().username });
    expect(rows.flatMap((r) => r.instance_uids).sort()).toEqual([...DISC_UIDS].sort());
  });

  it('a second run finds every instance already present and stores nothing', async () => {
    const before = await a.deps.db('instances').count<{ n: string }[]>('* as n');
    const again = await importCli([path.join(work, 'disc')]);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.summary).toMatchObject({ stored: 0, alreadyPresent: 7, skipped: 2, failed: 0 });
    expect(await a.deps.db('instances').count<{ n: string }[]>('* as n')).toEqual(before);
  });
});

describe('npm run import failures', { timeout: CLI_TIMEOUT }, () => {
  it('lists each failing file with its reason and exits 1, storing the rest', async () => {
    const dir = path.join(work, 'bad');
    copySample('JPEG-lossy.dcm', path.join(dir, 'ok.dcm'));
    // The same SOP Instance as MR_small.dcm (stored above) in another encoding.
    copySample('MR_small_implicit.dcm', path.join(dir, 'mr-implicit.dcm'));
    fs.writeFileSync(path.join(dir, 'cut.dcm'), fs.readFileSync(path.join(samples, 'CT_small.dcm')).subarray(0, 3000));
    const r = await importCli([dir]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.summary).toMatchObject({ files: 3, stored: 1, failed: 2 });
    expect(r.stdout).toMatch(new RegExp(`failed\\t${path.join(dir, 'cut.dcm')}\\ttruncated DICOM file.*\\(0xC000\\)`));
    expect(r.stdout).toMatch(new RegExp(`failed\\t${path.join(dir, 'mr-implicit.dcm')}\\t.*already stored with different content \\(0x0111\\)`));
  });

  it('refuses an unknown option with exit 2', async () => {
    const r = await importCli([work, '--worker', '2']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--worker/);
  });

  it('refuses a folder that does not exist with exit 2', async () => {
    const r = await importCli([path.join(work, 'nowhere')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no such file or folder/);
  });

  it('refuses a worker count out of range with exit 2', async () => {
    const r = await importCli([work, '--workers', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--workers must be a whole number from 1 to 64/);
  });
});

describe('npm run import --as', { timeout: CLI_TIMEOUT }, () => {
  it('stores as a local account with a role that may store, and audits it by name', async () => {
    await saveUser(a.deps.db, { username: 'migrator', password_hash: 'x', roles: ['uploader'], clearances: [] });
    const dir = path.join(work, 'as');
    const inst = syntheticInstance();
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'one.dcm'), inst.bytes);
    const r = await importCli([dir, '--as', 'migrator']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const row = await a.deps.db('audit_events').where({ protocol: 'cli', sub: 'migrator' }).first();
    expect(row).toMatchObject({ action: 'store', instance_uids: [inst.sopInstanceUid] });
  });

  it('refuses an account that may not store, and one that does not exist', async () => {
    await saveUser(a.deps.db, { username: 'reader', password_hash: 'x', roles: ['clinician'], clearances: [] });
    const denied = await importCli([work, '--as', 'reader']);
    expect(denied.code).toBe(2);
    expect(denied.stderr).toMatch(/may not store/);
    const unknown = await importCli([work, '--as', 'nobody']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no such local account/);
  });
});

describe('npm run import stopped and run again', { timeout: CLI_TIMEOUT }, () => {
  function makeSeries(dir: string, N: number): string[] {
    fs.mkdirSync(dir, { recursive: true });
    const first = syntheticInstance({ rows: 64, columns: 64 });
    const uids = [first.sopInstanceUid];
    fs.writeFileSync(path.join(dir, 'f000.dcm'), first.bytes);
    for (let i = 1; i < N; i++) {
      const inst = syntheticInstance({ studyUid: first.studyUid, seriesUid: first.seriesUid, rows: 64, columns: 64 });
      uids.push(inst.sopInstanceUid);
      fs.writeFileSync(path.join(dir, `f${String(i).padStart(3, '0')}.dcm`), inst.bytes);
    }
    return uids;
  }

  async function storedOf(uids: string[]): Promise<number> {
    const [{ n }] = await a.deps.db('instances').whereIn('sop_instance_uid', uids).count<{ n: string }[]>('* as n');
    return Number(n);
  }

  async function auditedOf(uids: string[]): Promise<Set<string>> {
    const rows = await a.deps.db('audit_events').where({ protocol: 'cli' }).whereRaw('instance_uids && ?::text[]', [uids]).select('instance_uids');
    return new Set(rows.flatMap((r) => r.instance_uids as string[]).filter((u) => uids.includes(u)));
  }

  /** Starts an import, waits until `ready` says some (not all) files went in, then sends `signal`. */
  async function interrupted(
    dir: string,
    signal: NodeJS.Signals,
    ready: () => Promise<boolean>,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }> {
    const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, dir, '--workers', '1'], { cwd: root, env: toolEnv() });
    let stdout = '';
    child.stdout.on('data', (c) => (stdout += c));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, sig) => resolve({ code, signal: sig })),
    );
    let gone = false;
    void exited.then(() => (gone = true));
    while (!gone && !(await ready())) await new Promise((r) => setTimeout(r, 10));
    child.kill(signal);
    return { ...(await exited), stdout };
  }

  it('Ctrl-C finishes the files in flight, exits 130, and the next run continues where it stopped', async () => {
    const N = 60;
    const dir = path.join(work, 'sigint');
    const uids = makeSeries(dir, N);
    const stopped = await interrupted(dir, 'SIGINT', async () => (await storedOf(uids)) >= 3);
    expect(stopped.code, stopped.stdout).toBe(130);
    const done = summaryOf(stopped.stdout);
    expect(done).toMatchObject({ interrupted: true, failed: 0 });
    expect(done.stored as number).toBeLessThan(N);
    // Every file it reported done is stored, whole, and audited: nothing half-finished.
    expect(await storedOf(uids)).toBe(done.stored);
    expect((await auditedOf(uids)).size).toBe(done.stored);
    const again = await importCli([dir, '--resume']);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stderr).toContain(`continuing an earlier import of these folders: ${done.stored} files were done`);
    expect(again.summary).toMatchObject({ files: N, resumed: done.stored, alreadyPresent: done.stored, stored: N - (done.stored as number), failed: 0 });
    expect(await storedOf(uids)).toBe(N);
  });

  it('a killed import run again skips what was recorded and stores the rest, and every instance is audited', async () => {
    const N = 150;
    const dir = path.join(work, 'sigkill');
    const uids = makeSeries(dir, N);
    // Killed once the first batch of files has its audit row and so is recorded as done.
    const state = stateFileFor(a.deps.config.dataDir, [dir]);
    const killed = await interrupted(dir, 'SIGKILL', async () => fs.existsSync(state) && fs.statSync(state).size > 0);
    expect(killed.signal).toBe('SIGKILL');
    const storedBefore = await storedOf(uids);
    expect(storedBefore).toBeLessThan(N);
    const again = await importCli([dir]);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.summary.resumed as number).toBeGreaterThan(0);
    expect(again.summary).toMatchObject({ files: N, failed: 0, stored: N - storedBefore, alreadyPresent: storedBefore });
    expect(await storedOf(uids)).toBe(N);
    // Stored before the kill but in a batch whose row was not written: audited by the second run.
    expect((await auditedOf(uids)).size).toBe(N);
  });
});
