import type { Knex } from 'knex';
import type { Db } from './db/knex.js';

/**
 * Who is asking. Identities, roles and sensitivity labels arrive with the
 * access-control work; until then every caller is the local operator.
 */
export interface Principal {
  sub: string;
}

export const LOCAL_OPERATOR: Principal = Object.freeze({ sub: 'local' });

/**
 * The one rule every index read starts from (DESIGN.md): the studies this
 * principal may see, as a subquery of study UIDs. Reads in db/ constrain
 * their rows with `whereIn('study_uid', visibleStudies(db, principal))`.
 */
export function visibleStudies(db: Db | Knex.Transaction, principal: Principal): Knex.QueryBuilder {
  void principal;
  return db('studies').select('study_uid');
}
