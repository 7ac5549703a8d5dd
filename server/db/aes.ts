import type { Role } from '../access.js';
import type { Db } from './knex.js';

/** One registered application entity (migrations/20261203150000_aes.ts). */
export interface AeRow {
  title: string;
  host: string | null;
  port: number | null;
  roles: Role[];
  clearances: string[];
  move_destination: boolean;
}

const COLUMNS = ['title', 'host', 'port', 'roles', 'clearances', 'move_destination'] as const;

export async function listAes(db: Db): Promise<AeRow[]> {
  return db('aes')
    .orderBy('title')
    .select(...COLUMNS);
}

export async function findAe(db: Db, title: string): Promise<AeRow | undefined> {
  return db('aes')
    .where({ title })
    .first(...COLUMNS);
}

/** Adds or replaces an AE; true when it was added. */
export async function saveAe(db: Db, ae: AeRow): Promise<boolean> {
  const [row] = await db('aes')
    .insert(ae)
    .onConflict('title')
    .merge({ ...ae, updated_at: db.fn.now() } as never)
    // xmax is 0 for a row this statement inserted, not for one it updated.
    .returning(db.raw('(xmax = 0) as added'));
  return Boolean((row as { added: boolean }).added);
}

export async function removeAe(db: Db, title: string): Promise<boolean> {
  return (await db('aes').where({ title }).del()) === 1;
}
