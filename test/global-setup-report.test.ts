import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// A failing test set-up must say why: vitest alone ended such a run after
// its RUN line, with exit code 1 and nothing else (as when the embedded
// PostgreSQL could not be started as root in a private folder).

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-setup-report-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function runVitest(failure: string): Promise<{ code: number; output: string }> {
  const dir = fs.mkdtempSync(path.join(tmp, 'run-'));
  fs.writeFileSync(
    path.join(dir, 'setup.ts'),
    `import { showingFailures } from ${JSON.stringify(path.join(root, 'test/global-setup.ts'))};\nexport default () => showingFailures('set-up', async () => { ${failure} });\n`,
  );
  fs.writeFileSync(path.join(dir, 'vitest.config.mjs'), `export default { test: { include: ['*.test.mjs'], globals: true, globalSetup: ['./setup.ts'] } };\n`);
  fs.writeFileSync(path.join(dir, 'a.test.mjs'), `test('runs', () => {});\n`);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(root, 'node_modules/vitest/vitest.mjs'), 'run', '--root', dir, '--config', path.join(dir, 'vitest.config.mjs')],
      { cwd: dir, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: typeof err?.code === 'number' ? err.code : err ? 1 : 0, output: `${stdout}\n${stderr}` }),
    );
  });
}

describe('a failing test set-up', () => {
  it('prints an error thrown outside its promise, with the cause, and the run fails', async () => {
    const { code, output } = await runVitest(
      "await new Promise(() => setTimeout(() => { throw new Error('spawn initdb EACCES', { cause: new Error('the folder is private') }); }, 10));",
    );
    expect(code).toBe(1);
    expect(output).toContain('The test set-up (test/global-setup.ts) failed');
    expect(output).toContain('spawn initdb EACCES');
    expect(output).toContain('the folder is private');
  });

  it('prints a rejection without a reason as such', async () => {
    const { code, output } = await runVitest('throw undefined;');
    expect(code).toBe(1);
    expect(output).toContain('The test set-up (test/global-setup.ts) failed: a failure without a reason (undefined)');
  });
});
