import bcrypt from 'bcryptjs';

// Local account passwords are bcrypt hashes (bcryptjs: the bcrypt algorithm
// in plain JavaScript, so nothing native to build on install).

/** bcrypt reads at most 72 bytes; a longer password would be cut silently, so it is refused. */
export function passwordProblem(password: string): string | undefined {
  if (password.length < 10) return 'a password needs at least 10 characters';
  if (Buffer.byteLength(password) > 72) return 'a password may have at most 72 bytes';
  return undefined;
}

export function hashPassword(password: string, rounds: number): Promise<string> {
  return bcrypt.hash(password, rounds);
}

// Compared against when the user does not exist, so an unknown name takes as
// long as a wrong password. Made at the first login, not at every start.
let dummy: Promise<string> | undefined;

export async function checkPassword(password: string, hash: string | undefined): Promise<boolean> {
  const ok = await bcrypt.compare(password, hash ?? (await (dummy ??= bcrypt.hash('not a password of anyone', 10))));
  return ok && hash !== undefined;
}
