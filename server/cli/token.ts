import { LABEL_PATTERN, ROLES, toRoles } from '../access.js';
import { createTokenService, loadSecret } from '../auth/tokens.js';
import { loadConfig } from '../config.js';
import { fail, listOption, readArgs, runCommand } from './args.js';

// `npm run token -- --sub pacs-1 --roles uploader [--clearances a,b] [--ttl 30d]`:
// prints a bearer token for a system (a PACS, a modality gateway, a script),
// signed with this archive's HS256 secret (AUTH_JWT_SECRET or DATA_DIR/auth-secret).
const USAGE = 'usage: npm run token -- --sub <name> --roles <role,…> [--clearances <label,…>] [--ttl <seconds | 12h | 30d>]';

function seconds(v: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(v);
  if (!m) fail(`--ttl "${v}" is not a duration such as 3600, 12h or 30d`);
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
}

await runCommand(async () => {
  const { values, positionals } = readArgs(
    process.argv.slice(2),
    { sub: { type: 'string' }, roles: { type: 'string' }, clearances: { type: 'string' }, ttl: { type: 'string' } },
    USAGE,
  );
  if (positionals.length) fail(`unexpected argument "${positionals[0]}"\n${USAGE}`);
  const sub = values.sub;
  if (!sub) fail(USAGE);
  const asked = listOption(values.roles);
  const roles = toRoles(asked);
  const unknown = asked.filter((r) => !roles.includes(r as never));
  if (!roles.length || unknown.length)
    fail(`--roles must name roles among ${ROLES.join(', ')}${unknown.length ? ` (unknown: ${unknown.join(', ')})` : ''}\n${USAGE}`);
  const clearances = listOption(values.clearances);
  const badLabel = clearances.find((c) => !LABEL_PATTERN.test(c));
  if (badLabel !== undefined) fail(`clearance "${badLabel}" is not a valid label`);
  const ttl = seconds(values.ttl ?? '24h');
  const config = loadConfig();
  const tokens = createTokenService(config.auth, loadSecret(config.auth, config.dataDir));
  process.stdout.write(`${tokens.sign({ sub, roles, clearances }, ttl)}\n`);
});
