// CLI: npm run conformance -- --base <url> [--fixtures <dir>] [--delete] [--token <jwt>]
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { runConformance } from './suite.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function arg(name: string): string | undefined {
  const argv = process.argv.slice(2);
  const i = argv.indexOf(`--${name}`);
  if (i >= 0) return argv[i + 1];
  const eq = argv.find((a) => a.startsWith(`--${name}=`));
  return eq?.slice(name.length + 3);
}

const base = arg('base');
if (!base) {
  console.error('usage: npm run conformance -- --base <url> [--fixtures <dir>] [--delete] [--token <jwt>]');
  process.exit(2);
}
const fixturesDir = resolve(arg('fixtures') ?? resolve(repoRoot, 'test/fixtures/samples'));
const results = await runConformance({
  base,
  fixturesDir,
  deleteSupported: process.argv.includes('--delete'),
  headers: arg('token') ? { Authorization: `Bearer ${arg('token')}` } : {},
  log: (line) => console.log(line),
});
const failed = results.filter((r) => !r.ok).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
// exit explicitly: a server that never answers must not keep the CLI alive
process.exit(failed > 0 ? 1 : 0);
