import type { Role } from '../access.js';
import type { Db } from './knex.js';

export interface UserRow {
  username: string;
  password_hash: string;
  roles: Role[];
  clearances: string[];
}

export async function findUser(db: Db, username: string): Promise<UserRow | undefined> {
  return db('users').where({ username }).first('username', 'password_hash', 'roles', 'clearances');
}

export async function saveUser(db: Db, user: UserRow): Promise<void> {
  await db('users')
    .insert(user)
    .onConflict('username')
    .merge({ ...user, updated_at: db.fn.now() } as never);
}

export async function setPassword(db: Db, username: string, passwordHash: string): Promise<boolean> {
  return (await db('users').where({ username }).update({ password_hash: passwordHash, updated_at: db.fn.now() })) === 1;
}

export async function removeUser(db: Db, username: string): Promise<boolean> {
  return (await db('users').where({ username }).del()) === 1;
}

export async function listUsers(db: Db): Promise<Omit<UserRow, 'password_hash'>[]> {
  return db('users').orderBy('username').select('username', 'roles', 'clearances');
}

export async function countUsers(db: Db): Promise<number> {
  const row = await db('users').count<{ n: string }[]>('* as n').first();
  return Number(row?.n ?? 0);
}
