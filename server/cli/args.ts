import { parseArgs, type ParseArgsConfig } from 'node:util';

// Cairn's operator commands read their arguments with node:util's parseArgs,
// strictly: an unknown option or a missing value is a usage error (exit 2),
// never silently ignored.

type Options = NonNullable<ParseArgsConfig['options']>;

/** The positionals and options of `argv` per `options`; a mistake fails with the message and `usage`. */
export function readArgs<O extends Options>(argv: string[], options: O, usage: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    // parseArgs throws TypeErrors whose messages name the option at fault.
    fail(`${(err as Error).message}\n${usage}`);
  }
}

/** A comma-separated option as a list (`--roles clinician,researcher`). */
export function listOption(value: string | boolean | undefined): string[] {
  return typeof value === 'string'
    ? value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [];
}

/** An operator mistake: its message is printed and the command exits with status 2. */
export class UsageError extends Error {}

export function fail(message: string): never {
  throw new UsageError(message);
}

/** Runs a command's body; a UsageError prints its message (no stack) and exits 2. */
export async function runCommand(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n`);
    // The command's own finally blocks have run by now (the database is
    // closed); exit at once rather than wait for idle sockets to time out.
    process.exit(2);
  }
}
