import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenService } from '../server/auth/tokens.js';
import { testConfig } from '../server/config.js';
import { createTestArchive, type TestArchive } from './helpers.js';

// The operator commands `npm run token` and `npm run user`, run as the
// child processes they are, against this test's own database.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SECRET = 'cli-test-secret-cli-test-secret-0123456789';

function run(script: string, args: string[], env: Record<string, string>, stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', script, ...args],
      { cwd: root, env: { ...process.env, LOG_LEVEL: 'warn', ...env } },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(stdin ?? '');
  });
}

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive({ auth: { ...testConfig().auth, jwtSecret: SECRET, passwordHashRounds: 4 } });
});
afterAll(async () => {
  await a?.close();
});

describe('npm run token', () => {
  it('prints a token with the roles and clearances asked for, signed with the archive secret', async () => {
    const r = await run('server/cli/token.ts', ['--sub', 'pacs-1', '--roles', 'uploader', '--clearances', 'vip', '--ttl', '30d'], {
      AUTH_JWT_SECRET: SECRET,
      DATA_DIR: a.deps.config.dataDir,
    });
    expect(r.code, r.stderr).toBe(0);
    const { principal } = await createTokenService(testConfig().auth, SECRET).verify(r.stdout.trim());
    expect(principal).toEqual({ sub: 'pacs-1', roles: ['uploader'], clearances: ['vip'] });
    expect((await a.anonymous.get('/dicom-web/studies').set('Authorization', `Bearer ${r.stdout.trim()}`)).status).toBe(403);
  });

  it('refuses an unknown role with a message', async () => {
    const r = await run('server/cli/token.ts', ['--sub', 'x', '--roles', 'root'], { AUTH_JWT_SECRET: SECRET });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown: root/);
  });

  it('refuses an option it does not know rather than ignoring it', async () => {
    const r = await run('server/cli/token.ts', ['--sub', 'x', '--roles', 'uploader', '--role', 'admin'], { AUTH_JWT_SECRET: SECRET });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--role/);
    expect(r.stdout).toBe('');
  });

  it('refuses an option given without its value', async () => {
    const r = await run('server/cli/token.ts', ['--sub', 'x', '--roles'], { AUTH_JWT_SECRET: SECRET });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--roles/);
  });
});

describe('npm run user', () => {
  const env = () => ({ DATABASE_URL: a.dbUrl, DATA_DIR: a.deps.config.dataDir, PASSWORD_HASH_ROUNDS: '4' });

  it('adds a user whose password then logs in, lists and removes it', async () => {
    const add = await run('server/cli/user.ts', ['add', 'bob', '--roles', 'clinician', '--clearances', 'vip,forensic'], env(), 'a long enough password\n');
    expect(add.code, add.stderr).toBe(0);
    const login = await a.anonymous.post('/auth/login').send({ username: 'bob', password: 'a long enough password' });
    expect(login.status).toBe(200);
    expect(login.body).toMatchObject({ sub: 'bob', roles: ['clinician'], clearances: ['vip', 'forensic'] });
    const list = await run('server/cli/user.ts', ['list'], env());
    expect(list.stdout).toContain('bob\troles=clinician\tclearances=vip,forensic');
    expect((await run('server/cli/user.ts', ['remove', 'bob'], env())).code).toBe(0);
    expect((await a.anonymous.post('/auth/login').send({ username: 'bob', password: 'a long enough password' })).status).toBe(401);
  });

  it('refuses an unknown option before touching the database', async () => {
    const r = await run('server/cli/user.ts', ['add', 'dave', '--roles', 'admin', '--clearance', 'vip'], env(), 'a long enough password\n');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--clearance/);
    expect(await a.deps.db('users').where({ username: 'dave' }).first()).toBeUndefined();
  });

  it('refuses a short password and stores nothing', async () => {
    const r = await run('server/cli/user.ts', ['add', 'carol', '--roles', 'admin'], env(), 'short\n');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/at least 10/);
    expect(await a.deps.db('users').where({ username: 'carol' }).first()).toBeUndefined();
  });
});
