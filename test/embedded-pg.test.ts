import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from './global-setup.js';
import { bundledPostgres, EmbeddedPgError, mayEnter, placeCluster, startEmbeddedPostgres, type EmbeddedPg } from '../server/db/embedded-pg.js';

// The embedded PostgreSQL after a crash: `kill -9` of Cairn and of its
// PostgreSQL leaves a postmaster.pid behind, a postmaster that may stay a
// zombie until its parent collects it, and server processes that take a
// moment to notice and exit. The next start must connect the first time.

const isRoot = process.getuid?.() === 0;
const dirs: string[] = [];
const running: EmbeddedPg[] = [];
const children: ChildProcess[] = [];

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const r of running) await r.stop().catch(() => {});
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** One connection and one query, with no retry: what boot does right after the start. */
async function queryOnce(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<{ db: string }>('select current_database() as db')).rows[0].db;
  } finally {
    await c.end();
  }
}

const postmasterPid = (dataDir: string) => Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);

function state(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

/** A Cairn of its own (another process) that starts the embedded PostgreSQL on dataDir and keeps running. */
async function startInAnotherProcess(dataDir: string, port: number): Promise<ChildProcess> {
  const script = `import { startEmbeddedPostgres } from './server/db/embedded-pg.ts'; await startEmbeddedPostgres(process.argv[1], Number(process.argv[2]), () => {}); process.stdout.write('ready\\n'); setInterval(() => {}, 60_000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dataDir, String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`the other process exited (${code}) before its PostgreSQL was ready`)));
  });
  return child;
}

describe('the embedded PostgreSQL after a crash', () => {
  it.skipIf(!fs.existsSync('/proc/self/stat'))(
    'starts on the first try after kill -9 of Cairn and PostgreSQL, with the killed postmaster still a zombie',
    async () => {
      const dataDir = path.join(tempDir('cairn-pg-crash-'), 'pg');
      const port = await freePort();
      for (let cycle = 0; cycle < 3; cycle++) {
        const crashed = await startInAnotherProcess(dataDir, port);
        const pid = postmasterPid(dataDir);
        // Cairn is stopped before PostgreSQL is killed, so nothing collects the
        // postmaster: it stays a zombie, as under a container's PID 1 that
        // does not reap, and kill(pid, 0) still succeeds for it.
        crashed.kill('SIGSTOP');
        process.kill(pid, 'SIGKILL');
        for (let i = 0; i < 100 && state(pid) !== 'Z'; i++) await new Promise((r) => setTimeout(r, 20));
        expect(state(pid), `cycle ${cycle}`).toBe('Z');
        const again = await startEmbeddedPostgres(dataDir, port, () => {});
        expect(await queryOnce(again.url), `cycle ${cycle}`).toBe('cairn');
        crashed.kill('SIGKILL');
        await again.stop();
      }
    },
  );

  it("starts on the first try right after its own PostgreSQL was killed, while that one's server processes are still exiting", async () => {
    const dataDir = path.join(tempDir('cairn-pg-crash-'), 'pg');
    const port = await freePort();
    let current = await startEmbeddedPostgres(dataDir, port, () => {});
    for (let cycle = 0; cycle < 3; cycle++) {
      // Some work in flight, so the crash leaves WAL to replay.
      const c = new pg.Client({ connectionString: current.url });
      // The kill below ends this connection with "unexpected postmaster exit".
      c.on('error', () => {});
      await c.connect();
      await c.query('create table if not exists t (n int)');
      await c.query('insert into t select generate_series(1, 20000)');
      process.kill(postmasterPid(dataDir), 'SIGKILL');
      await c.end().catch(() => {});
      current = await startEmbeddedPostgres(dataDir, port, () => {});
      expect(await queryOnce(current.url), `cycle ${cycle}`).toBe('cairn');
    }
    running.push(current);
  });

  it('is not fooled by a postmaster.pid naming a live process that is not PostgreSQL', async () => {
    const dataDir = path.join(tempDir('cairn-pg-crash-'), 'pg');
    const port = await freePort();
    const first = await startEmbeddedPostgres(dataDir, port, () => {});
    const lock = fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
    await first.stop();
    // The lock file of a server that did not stop cleanly, its pid now another program's (as after a reboot).
    const other = spawn('sleep', ['60']);
    children.push(other);
    expect(Number(lock[0])).not.toBe(other.pid);
    fs.writeFileSync(path.join(dataDir, 'postmaster.pid'), [String(other.pid), ...lock.slice(1)].join('\n'));
    const again = await startEmbeddedPostgres(dataDir, port, () => {});
    running.push(again);
    expect(await queryOnce(again.url)).toBe('cairn');
  });

  it('shares the PostgreSQL that a running Cairn started on the same folder', async () => {
    const dataDir = path.join(tempDir('cairn-pg-share-'), 'pg');
    const port = await freePort();
    const first = await startEmbeddedPostgres(dataDir, port, () => {});
    running.push(first);
    const second = await startEmbeddedPostgres(dataDir, await freePort(), () => {});
    expect(second.url).toBe(first.url);
    await second.stop();
    expect(await queryOnce(first.url)).toBe('cairn');
  });
});

describe('as root, in a folder the postgres user may not enter', () => {
  const bundled = bundledPostgres();
  const account = { uid: 4242, gid: 4242 };
  const denyPrivate = (dir: string) => !dir.split(path.sep).includes('private');

  it('a folder of mode 0700 is one the postgres user may not enter, and one of 0755 is', () => {
    const d = tempDir('cairn-pg-mode-');
    fs.mkdirSync(path.join(d, 'inner'));
    fs.chmodSync(d, 0o700);
    expect(mayEnter(path.join(d, 'inner'), account)).toBe(false);
    expect(mayEnter(path.join(d, 'inner', 'not-made-yet'), account)).toBe(false);
    fs.chmodSync(d, 0o711);
    expect(mayEnter(path.join(d, 'inner'), account)).toBe(true);
  });

  it('runs from a copy of the binaries and keeps a new cluster in the fallback folder, linked from DATA_DIR', () => {
    const base = tempDir('cairn-pg-place-');
    const place = placeCluster({
      dir: path.join(base, 'private', 'data', 'pg'),
      nativeDir: path.join(base, 'private', 'native'),
      version: '1.2.3',
      account,
      fallbackDir: path.join(base, 'fallback'),
      canEnter: denyPrivate,
    });
    expect(place.copyFrom).toBe(path.join(base, 'private', 'native'));
    expect(place.binDir).toBe(path.join(base, 'fallback', `1.2.3-${process.platform}-${process.arch}`, 'bin'));
    expect(place.dataDir).toMatch(new RegExp(`^${base}/fallback/data-[0-9a-f]{16}/pg$`));
    expect(place.linkAt).toBe(path.join(base, 'private', 'data', 'pg'));
  });

  it('uses the folders as they are when the postgres user may enter them, or when Cairn is not root', () => {
    const base = tempDir('cairn-pg-place-');
    const dir = path.join(base, 'open', 'data', 'pg');
    const native = path.join(base, 'open', 'native');
    expect(placeCluster({ dir, nativeDir: native, version: '1', account, fallbackDir: path.join(base, 'fb'), canEnter: denyPrivate })).toEqual({
      dataDir: dir,
      binDir: path.join(native, 'bin'),
    });
    expect(placeCluster({ dir: path.join(base, 'private', 'pg'), nativeDir: native, version: '1' })).toEqual({
      dataDir: path.join(base, 'private', 'pg'),
      binDir: path.join(native, 'bin'),
    });
  });

  it('an existing cluster the postgres user may not reach stops the start with one sentence naming the folder and both ways out', () => {
    const base = tempDir('cairn-pg-place-');
    const dir = path.join(base, 'private', 'data', 'pg');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'PG_VERSION'), '18\n');
    let err: unknown;
    try {
      placeCluster({ dir, nativeDir: bundled.nativeDir, version: '1', account, fallbackDir: path.join(base, 'fb'), canEnter: denyPrivate });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EmbeddedPgError);
    const message = (err as Error).message;
    expect(message).toContain(`may not enter ${path.join(base, 'private')} (mode `);
    expect(message).toContain('PostgreSQL refuses to run as root');
    expect(message).toContain(`chmod o+x ${path.join(base, 'private')}`);
    expect(message).toContain('DATABASE_URL');
    expect(message.split(/[.;] /).length).toBeLessThanOrEqual(2);
    expect(message.trim().endsWith('.')).toBe(true);
  });

  it('a fallback folder the postgres user may not enter either stops the start the same way', () => {
    const base = tempDir('cairn-pg-place-');
    fs.mkdirSync(path.join(base, 'private'), { mode: 0o700 });
    expect(() =>
      placeCluster({
        dir: path.join(base, 'private', 'pg'),
        nativeDir: bundled.nativeDir,
        version: '1',
        account,
        fallbackDir: path.join(base, 'private', 'fb'),
        canEnter: denyPrivate,
      }),
    ).toThrow(/may not enter .*private \(mode \d+\) where its database .* would lie .*; let it in \(chmod o\+x .*private\) or set DATABASE_URL/);
  });

  it.skipIf(!isRoot)('really starts from a folder of mode 0700, and again after a restart', async () => {
    const base = tempDir('cairn-pg-private-');
    fs.chmodSync(base, 0o755);
    const privateDir = path.join(base, 'private');
    fs.mkdirSync(privateDir, { mode: 0o700 });
    fs.chmodSync(privateDir, 0o700);
    // Cairn's own copy of the binaries, inside the private folder like a clone under /root.
    const native = path.join(privateDir, 'node_modules', 'native');
    fs.cpSync(bundled.nativeDir, native, { recursive: true, verbatimSymlinks: true });
    const fallbackDir = path.join(base, 'fallback');
    const dataDir = path.join(privateDir, 'data', 'pg');
    const port = await freePort();
    const logs: string[] = [];
    const first = await startEmbeddedPostgres(dataDir, port, (m) => logs.push(m), { fallbackDir, nativeDir: native });
    expect(await queryOnce(first.url)).toBe('cairn');
    await first.stop();
    expect(fs.lstatSync(dataDir).isSymbolicLink()).toBe(true);
    expect(fs.realpathSync(dataDir).startsWith(fallbackDir)).toBe(true);
    expect(logs.join('\n')).toContain(`cannot enter ${dataDir}`);
    expect(fs.statSync(privateDir).mode & 0o777).toBe(0o700);
    const again = await startEmbeddedPostgres(dataDir, port, () => {}, { fallbackDir, nativeDir: native });
    expect(await queryOnce(again.url)).toBe('cairn');
    await again.stop();
  });
});
