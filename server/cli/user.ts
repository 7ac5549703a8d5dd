import os from 'node:os';
import readline from 'node:readline';
import { LABEL_PATTERN, ROLES, toRoles } from '../access.js';
import { openAudit, recordAudit } from '../audit.js';
import { hashPassword, passwordProblem } from '../auth/passwords.js';
import { boot } from '../boot.js';
import { loadConfig } from '../config.js';
import type { Db } from '../db/knex.js';
import type { AppDeps } from '../deps.js';
import { countOpenSessions } from '../db/sessions.js';
import { findUser, listUsers, removeUser, saveUser, setPassword } from '../db/users.js';
import { createLogger } from '../log.js';
import { fail, listOption, readArgs, runCommand } from './args.js';

// `npm run user -- add alice --roles clinician --clearances vip`: local
// accounts for the login page. The password is read from the terminal
// (twice, not echoed) or, when stdin is not a terminal, from its first line.
const USAGE = `usage:
  npm run user -- add <name> --roles <role,…> [--clearances <label,…>]   (asks for the password)
  npm run user -- set <name> [--roles <role,…>] [--clearances <label,…>]
  npm run user -- passwd <name>
  npm run user -- remove <name>
  npm run user -- list
roles: ${ROLES.join(', ')}`;

async function readPassword(prompt: string): Promise<string> {
  if (!process.stdin.isTTY) {
    const rl = readline.createInterface({ input: process.stdin });
    for await (const line of rl) {
      rl.close();
      return line;
    }
    fail('no password on stdin');
  }
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  const out = rl as unknown as { _writeToOutput: (s: string) => void };
  let muted = false;
  out._writeToOutput = (s: string) => {
    if (!muted || s.includes('\n')) process.stderr.write(muted ? '\n' : s);
  };
  const answer = await new Promise<string>((resolve) => {
    rl.question(prompt, resolve);
    muted = true;
  });
  rl.close();
  return answer;
}

async function newPassword(): Promise<string> {
  const p = await readPassword('password: ');
  const problem = passwordProblem(p);
  if (problem) fail(problem);
  if (process.stdin.isTTY && (await readPassword('again: ')) !== p) fail('the passwords differ');
  return p;
}

function rolesOf(asked: string[]) {
  const roles = toRoles(asked);
  const unknown = asked.filter((r) => !roles.includes(r as never));
  if (unknown.length) fail(`unknown roles: ${unknown.join(', ')} (roles: ${ROLES.join(', ')})`);
  return roles;
}

function clearancesOf(asked: string[]) {
  const bad = asked.find((c) => !LABEL_PATTERN.test(c));
  if (bad !== undefined) fail(`clearance "${bad}" is not a valid label`);
  return asked;
}

/**
 * Makes a change to an account that ends its open sessions (the database does
 * that: see the sessions migration) and audits their end, naming how many.
 */
async function endingSessions(deps: AppDeps, command: string, name: string, reason: string, change: (db: Db) => Promise<unknown>): Promise<number> {
  const ended = await deps.db.transaction(async (trx) => {
    const open = await countOpenSessions(trx, name);
    await change(trx);
    return open - (await countOpenSessions(trx, name));
  });
  if (ended > 0) {
    const audit = openAudit(deps);
    try {
      await recordAudit(audit, { via: { protocol: 'cli', command: `user ${command}` }, sub: os.userInfo().username }, 'session-revoke', 'success', {
        user: name,
        sessions: ended,
        reason,
      });
    } finally {
      audit.syslog?.close();
    }
  }
  return ended;
}

const endedNote = (n: number) => (n ? ` (${n} open session${n === 1 ? '' : 's'} ended)` : '');

await runCommand(async () => {
  const { values, positionals } = readArgs(process.argv.slice(2), { roles: { type: 'string' }, clearances: { type: 'string' } }, USAGE);
  const [command, name, extra] = positionals;
  if (extra !== undefined) fail(`unexpected argument "${extra}"\n${USAGE}`);
  if (!command || (command !== 'list' && !name)) fail(USAGE);
  const config = loadConfig();
  const deps = await boot(config, createLogger({ logLevel: 'warn' }));
  const rounds = config.auth.passwordHashRounds;
  try {
    switch (command) {
      case 'add': {
        const roles = rolesOf(listOption(values.roles));
        if (!roles.length) fail(`add needs --roles\n${USAGE}`);
        if (await findUser(deps.db, name)) fail(`user ${name} exists; use set or passwd`);
        const password = await newPassword();
        await saveUser(deps.db, {
          username: name,
          password_hash: await hashPassword(password, rounds),
          roles,
          clearances: clearancesOf(listOption(values.clearances)),
        });
        process.stdout.write(`user ${name} added with roles ${roles.join(', ')}\n`);
        break;
      }
      case 'set': {
        const user = await findUser(deps.db, name);
        if (!user) fail(`no user ${name}`);
        const roles = values.roles !== undefined ? rolesOf(listOption(values.roles)) : user.roles;
        const clearances = values.clearances !== undefined ? clearancesOf(listOption(values.clearances)) : user.clearances;
        const ended = await endingSessions(deps, 'set', name, 'roles or clearances changed', (db) => saveUser(db, { ...user, roles, clearances }));
        process.stdout.write(`user ${name}: roles ${roles.join(', ') || '(none)'}; clearances ${clearances.join(', ') || '(none)'}${endedNote(ended)}\n`);
        break;
      }
      case 'passwd': {
        if (!(await findUser(deps.db, name))) fail(`no user ${name}`);
        await setPassword(deps.db, name, await hashPassword(await newPassword(), rounds));
        process.stdout.write(`password of ${name} changed\n`);
        break;
      }
      case 'remove': {
        let found = false;
        const ended = await endingSessions(deps, 'remove', name, 'account removed', async (db) => {
          found = await removeUser(db, name);
        });
        if (!found) fail(`no user ${name}`);
        process.stdout.write(`user ${name} removed${endedNote(ended)}\n`);
        break;
      }
      case 'list':
        for (const u of await listUsers(deps.db)) process.stdout.write(`${u.username}\troles=${u.roles.join(',')}\tclearances=${u.clearances.join(',')}\n`);
        break;
      default:
        fail(USAGE);
    }
  } finally {
    await deps.shutdown();
  }
});
