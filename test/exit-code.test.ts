import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('loading the embedded PostgreSQL', () => {
  it('keeps the exit code a process sets (npm test, storage:verify rely on it)', async () => {
    const script = "import { bundledPostgres } from './server/db/knex.ts'; bundledPostgres(); process.exitCode = 3;";
    const err = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 30_000 }).catch((e) => e);
    expect(err.code).toBe(3);
  });
});
