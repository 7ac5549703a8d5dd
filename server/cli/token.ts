import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { LABEL_PATTERN, ROLES, toRoles } from '../access.js';
import { tokenIdProblem } from '../api/tokens.js';
import { createTokenService, loadSecret } from '../auth/tokens.js';
import { loadConfig } from '../config.js';
import { parseProfile, PROJECT_PATTERN } from '../deid/settings.js';
import { fail, listOption, readArgs, runCommand } from './args.js';

// `npm run token -- --sub pacs-1 --roles uploader [--clearances a,b] [--ttl 30d]
// [--deid-profile options] [--deid-project name]`:
// prints a bearer token for a system (a PACS, a modality gateway, a script),
// signed with this archive's HS256 secret (AUTH_JWT_SECRET or DATA_DIR/auth-secret).
// Its id (jti) goes to stderr, so stdout holds the token alone. The --deid
// options give it a `deid` claim: the de-identified view its bearer reads through.
// `npm run token -- revoke <jti> [--reason …]` revokes one, audited.
const USAGE = `usage:
  npm run token -- --sub <name> --roles <role,…> [--clearances <label,…>] [--ttl <seconds | 12h | 30d>]
                   [--deid-profile <option,…>] [--deid-project <name>]
  npm run token -- revoke <jti> [--reason <text>]`;

function seconds(v: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(v);
  if (!m) fail(`--ttl "${v}" is not a duration such as 3600, 12h or 30d`);
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
}

async function revoke(jti: string | undefined, reason: string | undefined): Promise<void> {
  const problem = tokenIdProblem(jti);
  if (problem) fail(`${problem}\n${USAGE}`);
  // Loaded here only: signing a token needs no database.
  const [{ openAudit, recordAudit }, { boot }, { revokeToken }, { createLogger }] = await Promise.all([
    import('../audit.js'),
    import('../boot.js'),
    import('../db/sessions.js'),
    import('../log.js'),
  ]);
  const config = loadConfig();
  const deps = await boot(config, createLogger({ logLevel: 'warn' }));
  const audit = openAudit(deps);
  try {
    const operator = os.userInfo().username;
    const done = await revokeToken(deps.db, { jti: jti!, by: operator, reason: reason ?? null });
    await recordAudit(audit, { via: { protocol: 'cli', command: 'token revoke' }, sub: operator }, 'token-revoke', 'success', {
      jti,
      alreadyRevoked: !done,
      ...(reason ? { reason } : {}),
    });
    process.stdout.write(
      done
        ? `token ${jti} revoked: refused from now on (by running servers within AUTH_REVOCATION_CHECK_SECONDS, ${config.auth.revocationCheckSeconds} s)\n`
        : `token ${jti} was already revoked\n`,
    );
  } finally {
    audit.syslog?.close();
    await deps.shutdown();
  }
}

await runCommand(async () => {
  const { values, positionals } = readArgs(
    process.argv.slice(2),
    {
      sub: { type: 'string' },
      roles: { type: 'string' },
      clearances: { type: 'string' },
      ttl: { type: 'string' },
      reason: { type: 'string' },
      'deid-profile': { type: 'string' },
      'deid-project': { type: 'string' },
    },
    USAGE,
  );
  if (positionals[0] === 'revoke') {
    if (positionals.length > 2) fail(`unexpected argument "${positionals[2]}"\n${USAGE}`);
    if ([values.sub, values.roles, values.clearances, values.ttl, values['deid-profile'], values['deid-project']].some((v) => v !== undefined))
      fail(`revoke takes a jti and --reason only\n${USAGE}`);
    return revoke(positionals[1], values.reason);
  }
  if (positionals.length) fail(`unexpected argument "${positionals[0]}"\n${USAGE}`);
  if (values.reason !== undefined) fail(`--reason belongs to revoke\n${USAGE}`);
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
  const profile = values['deid-profile'];
  const project = values['deid-project'];
  const parsed = profile === undefined ? undefined : parseProfile(profile);
  if (parsed && 'problem' in parsed) fail(`--deid-profile "${profile}": ${parsed.problem}`);
  if (project !== undefined && !PROJECT_PATTERN.test(project)) fail(`--deid-project "${project}" is not 1-64 letters, digits, "_", "." or "-"`);
  const deid =
    profile !== undefined || project !== undefined
      ? { ...(profile !== undefined ? { profile } : {}), ...(project !== undefined ? { project } : {}) }
      : undefined;
  const ttl = seconds(values.ttl ?? '24h');
  const config = loadConfig();
  const tokens = createTokenService(config.auth, loadSecret(config.auth, config.dataDir));
  const jti = randomUUID();
  process.stdout.write(`${tokens.sign({ sub, roles, clearances, ...(deid ? { deid } : {}) }, ttl, { jti })}\n`);
  process.stderr.write(`jti ${jti} (revoke with: npm run token -- revoke ${jti})\n`);
});
