import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createTokenService } from '../../server/auth/tokens.js';
import { testConfig } from '../../server/config.js';

// `npm run token` gives a token a `deid` claim, and refuses one it could not honour.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SECRET = 'cli-test-secret-cli-test-secret-0123456789';

function token(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-token-cli-'));
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'server/cli/token.ts', ...args],
      { cwd: root, env: { ...process.env, LOG_LEVEL: 'warn', AUTH_JWT_SECRET: SECRET, DATA_DIR: dataDir } },
      (err, stdout, stderr) => {
        fs.rmSync(dataDir, { recursive: true, force: true });
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

describe('npm run token with a deid claim', () => {
  it('signs the profile and project asked for', async () => {
    const r = await token(['--sub', 'partner', '--roles', 'clinician', '--deid-profile', 'modified-dates,clean-descriptors', '--deid-project', 'trial-7']);
    expect(r.code, r.stderr).toBe(0);
    const { principal } = await createTokenService(testConfig().auth, SECRET).verify(r.stdout.trim());
    expect(principal.deid).toEqual({ profile: 'modified-dates,clean-descriptors', project: 'trial-7' });
  });

  it('refuses an unknown profile option', async () => {
    const r = await token(['--sub', 'partner', '--roles', 'clinician', '--deid-profile', 'keep-names']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('keep-names');
  });
});
