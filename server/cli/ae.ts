import fs from 'node:fs';
import os from 'node:os';
import { ROLES, toRoles } from '../access.js';
import { openAudit, recordAudit } from '../audit.js';
import { boot } from '../boot.js';
import { loadConfig } from '../config.js';
import { findAe, listAes, removeAe, saveAe, type AeRow } from '../db/aes.js';
import type { AppDeps } from '../deps.js';
import { aeInput, aeRuleProblem, aeTitleProblem, ANY_OTHER_AE, issuesText, parseAes, type AeInput, type AeRegistry } from '../dimse/aes.js';
import { deidentifiedAeWarning } from '../dimse/deidentified.js';
import { createLogger } from '../log.js';
import { fail, listOption, readArgs, runCommand } from './args.js';

// `npm run ae -- add CT1 --host 10.1.2.3 --port 104 --roles uploader`: the
// application entities DIMSE answers, in the `aes` table (as /api/aes
// changes them). Every replica's listener lets an AE added in at once, and
// sees a change or a removal at its next association after at most
// DIMSE_AES_REFRESH_SECONDS.
const USAGE = `usage:
  npm run ae -- add <title> [--host <address>] [--port <port>] [--roles <role,…>] [--clearances <label,…>] [--move-destination]
  npm run ae -- set <title> [--host <address>|''] [--port <port>|''] [--roles <role,…>] [--clearances <label,…>] [--move-destination|--no-move-destination]
  npm run ae -- remove <title>
  npm run ae -- list
  npm run ae -- import <file.json>   (the DIMSE_AES form: adds or replaces every AE it names)
--host: the address the AE must call from (any, when absent) and that C-MOVE and Storage Commitment reports connect to
--port: the port the AE listens on; --move-destination: a C-MOVE may send to it (needs host and port)
the title "*" gives every unregistered calling AE its roles and clearances; roles: ${ROLES.join(', ')}`;

const OPTIONS = {
  host: { type: 'string' },
  port: { type: 'string' },
  roles: { type: 'string' },
  clearances: { type: 'string' },
  'move-destination': { type: 'boolean' },
  'no-move-destination': { type: 'boolean' },
} as const;

type Values = ReturnType<typeof readArgs<typeof OPTIONS>>['values'];

function portOf(value: string): number | null {
  if (value === '') return null;
  if (!/^\d{1,5}$/.test(value)) fail(`--port "${value}" must be a whole number from 1 to 65535`);
  return Number(value);
}

/** The AE as asked: the options given, over what was registered before (for set). */
function asked(title: string, values: Values, before?: AeRow): AeInput {
  if (values['move-destination'] && values['no-move-destination']) fail('give --move-destination or --no-move-destination, not both');
  const raw = {
    host: values.host !== undefined ? values.host || null : (before?.host ?? null),
    port: values.port !== undefined ? portOf(values.port) : (before?.port ?? null),
    roles: values.roles !== undefined ? listOption(values.roles) : (before?.roles ?? []),
    clearances: values.clearances !== undefined ? listOption(values.clearances) : (before?.clearances ?? []),
    moveDestination: values['move-destination'] ? true : values['no-move-destination'] ? false : (before?.move_destination ?? false),
  };
  const parsed = aeInput.safeParse(raw);
  if (!parsed.success) fail(issuesText(parsed.error));
  const problem = aeRuleProblem(title, parsed.data);
  if (problem) fail(problem);
  return parsed.data;
}

const rowOf = (title: string, ae: AeInput): AeRow => ({
  title,
  host: ae.host,
  port: ae.port,
  roles: ae.roles,
  clearances: ae.clearances,
  move_destination: ae.moveDestination,
});

function describeAe(r: AeRow): string {
  const yes = (b: boolean) => (b ? 'yes' : 'no');
  return `${r.title}\thost=${r.host ?? '(any)'}\tport=${r.port ?? '-'}\troles=${r.roles.join(',')}\tclearances=${r.clearances.join(',')}\tmove-destination=${yes(r.move_destination)}`;
}

/** Says on stderr when the AE's roles give it a de-identified view, which DIMSE refuses to serve. */
function warnIfDeidentified(deps: AppDeps, r: AeRow): void {
  const warning = deidentifiedAeWarning(deps.research, r.title, { sub: `ae:${r.title}`, roles: toRoles(r.roles), clearances: r.clearances });
  if (warning) process.stderr.write(`warning: ${warning}\n`);
}

async function audited(deps: AppDeps, command: string, detail: Record<string, unknown>): Promise<void> {
  const audit = openAudit(deps);
  try {
    await recordAudit(audit, { via: { protocol: 'cli', command: `ae ${command}` }, sub: os.userInfo().username }, 'ae-change', 'success', detail);
  } finally {
    audit.syslog?.close();
  }
}

/**
 * The AEs of a file in the DIMSE_AES form, checked whole before anything is
 * written: a registry moving from the configuration into the table.
 */
function readImport(file: string): AeRow[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    fail(`cannot read ${file}: ${(err as Error).message}`);
  }
  let registry: AeRegistry;
  try {
    registry = parseAes(text);
  } catch (err) {
    fail(`${file}: ${(err as Error).message}`);
  }
  const entries = [...registry.aes.values()].map((ae) => ({
    title: ae.title,
    host: ae.host ?? null,
    port: ae.port ?? null,
    roles: [...ae.principal.roles],
    clearances: [...ae.principal.clearances],
    moveDestination: ae.moveDestination,
  }));
  const u = registry.unknown;
  if (u) entries.push({ title: ANY_OTHER_AE, host: null, port: null, roles: [...u.roles], clearances: [...u.clearances], moveDestination: false });
  const problems: string[] = [];
  const rows = entries.map(({ title, ...rest }) => {
    const checked = aeInput.safeParse(rest);
    if (!checked.success) problems.push(`${title}: ${issuesText(checked.error)}`);
    return rowOf(title, checked.success ? checked.data : aeInput.parse({}));
  });
  if (problems.length) fail(`${file}: nothing imported: ${problems.join('; ')}`);
  return rows;
}

const json = (r: AeRow) => ({ title: r.title, host: r.host, port: r.port, roles: r.roles, clearances: r.clearances, moveDestination: r.move_destination });

await runCommand(async () => {
  const { values, positionals } = readArgs(process.argv.slice(2), OPTIONS, USAGE);
  const [command, given, extra] = positionals;
  if (extra !== undefined) fail(`unexpected argument "${extra}"\n${USAGE}`);
  if (!command || (command !== 'list' && given === undefined)) fail(USAGE);
  if (!['add', 'set', 'remove', 'list', 'import'].includes(command)) fail(USAGE);
  const problem = given === undefined || command === 'import' ? undefined : aeTitleProblem(given);
  if (problem) fail(problem);
  const title = given?.trim() ?? '';
  // The options are checked before the database is opened: a mistake costs no boot.
  if (command === 'add' || command === 'set') {
    const checked = aeInput.partial().safeParse({
      ...(values.host ? { host: values.host } : {}),
      ...(values.port ? { port: portOf(values.port) } : {}),
      ...(values.roles !== undefined ? { roles: listOption(values.roles) } : {}),
      ...(values.clearances !== undefined ? { clearances: listOption(values.clearances) } : {}),
    });
    if (!checked.success) fail(issuesText(checked.error));
  }
  const imported = command === 'import' ? readImport(given ?? '') : [];
  const config = loadConfig();
  if (config.dimse.aesSource === 'configuration') {
    if (command !== 'list') fail('the AE registry is set by DIMSE_AES or DIMSE_AES_FILE: change it there, or unset both to manage AEs with this command');
    for (const ae of config.dimse.registry.aes.values())
      process.stdout.write(
        `${describeAe({ title: ae.title, host: ae.host ?? null, port: ae.port ?? null, roles: [...ae.principal.roles], clearances: [...ae.principal.clearances], move_destination: ae.moveDestination })}\n`,
      );
    const u = config.dimse.registry.unknown;
    if (u)
      process.stdout.write(
        `${describeAe({ title: '*', host: null, port: null, roles: [...u.roles], clearances: [...u.clearances], move_destination: false })}\n`,
      );
    process.stdout.write('(from DIMSE_AES / DIMSE_AES_FILE)\n');
    return;
  }
  const deps = await boot(config, createLogger({ logLevel: 'warn' }));
  try {
    switch (command) {
      case 'add': {
        const ae = rowOf(title, asked(title, values));
        if (!(await deps.db.transaction(async (trx) => !(await findAe(trx, title)) && (await saveAe(trx, ae))))) fail(`AE ${title} exists; use set`);
        await audited(deps, 'add', { title, change: 'add', after: json(ae) });
        process.stdout.write(`AE added: ${describeAe(ae)}\n`);
        warnIfDeidentified(deps, ae);
        break;
      }
      case 'set': {
        const before = await findAe(deps.db, title);
        if (!before) fail(`no AE ${title}; use add`);
        const ae = rowOf(title, asked(title, values, before));
        await saveAe(deps.db, ae);
        await audited(deps, 'set', { title, change: 'set', before: json(before), after: json(ae) });
        process.stdout.write(`AE changed: ${describeAe(ae)}\n`);
        warnIfDeidentified(deps, ae);
        break;
      }
      case 'remove': {
        const before = await findAe(deps.db, title);
        if (!before || !(await removeAe(deps.db, title))) fail(`no AE ${title}`);
        await audited(deps, 'remove', { title, change: 'remove', before: json(before) });
        process.stdout.write(`AE ${title} removed\n`);
        break;
      }
      case 'list':
        for (const r of await listAes(deps.db)) process.stdout.write(`${describeAe(r)}\n`);
        break;
      case 'import': {
        const befores = await deps.db.transaction(async (trx) => {
          const found = new Map<string, AeRow | undefined>();
          for (const ae of imported) {
            found.set(ae.title, await findAe(trx, ae.title));
            await saveAe(trx, ae);
          }
          return found;
        });
        for (const ae of imported) {
          const before = befores.get(ae.title);
          await audited(deps, 'import', { title: ae.title, change: before ? 'set' : 'add', ...(before ? { before: json(before) } : {}), after: json(ae) });
          process.stdout.write(`AE ${before ? 'replaced' : 'added'}: ${describeAe(ae)}\n`);
          warnIfDeidentified(deps, ae);
        }
        break;
      }
    }
  } finally {
    await deps.shutdown();
  }
});
