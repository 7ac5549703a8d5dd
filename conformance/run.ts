// CLI: npm run conformance -- --base <url> [--fixtures <dir>] [--delete] [--token <jwt>] [--wado-uri <url>]
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runConformance } from './suite.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = 'usage: npm run conformance -- --base <url> [--fixtures <dir>] [--delete] [--token <jwt>] [--wado-uri <url>]';

function usage(problem?: string): never {
  console.error(problem ? `${problem}\n${USAGE}` : USAGE);
  process.exit(2);
}

function readArgs() {
  try {
    return parseArgs({
      options: {
        base: { type: 'string' },
        fixtures: { type: 'string' },
        delete: { type: 'boolean', default: false },
        token: { type: 'string' },
        'wado-uri': { type: 'string' },
      },
      strict: true,
    }).values;
  } catch (err) {
    usage((err as Error).message);
  }
}
const args = readArgs();
const { base, fixtures, token } = args;
if (!base) usage();
const fixturesDir = resolve(fixtures ?? resolve(repoRoot, 'test/fixtures/samples'));
const results = await runConformance({
  base,
  fixturesDir,
  deleteSupported: args.delete,
  headers: token ? { Authorization: `Bearer ${token}` } : {},
  ...(args['wado-uri'] ? { wadoUri: args['wado-uri'] } : {}),
  log: (line) => console.log(line),
});
const failed = results.filter((r) => !r.ok).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
// exit explicitly: a server that never answers must not keep the CLI alive
process.exit(failed > 0 ? 1 : 0);
