import type { Db } from './knex.js';
import { appendRelabelChanges } from './write.js';

// The admin label API addresses studies and series whether or not the admin
// is cleared for them (labelling must reach what it hides); the guard admits
// only the `label` action (server/access.ts) to these functions.

export interface LabelTarget {
  studyUid: string;
  seriesUid?: string;
}

function row(db: Db, t: LabelTarget) {
  return t.seriesUid ? db('series').where({ series_uid: t.seriesUid, study_uid: t.studyUid }) : db('studies').where({ study_uid: t.studyUid });
}

/** The labels, or undefined when there is no such study or series. */
export async function readLabels(db: Db, t: LabelTarget): Promise<string[] | undefined> {
  const r: { labels: string[] } | undefined = await row(db, t).first('labels');
  return r?.labels;
}

/**
 * Replaces the label set; returns the previous one, or undefined when there
 * is no such study or series. A set that differs from the previous one gets
 * its change rows, one per instance below, in the same transaction.
 */
export async function replaceLabels(db: Db, t: LabelTarget, labels: readonly string[]): Promise<string[] | undefined> {
  const after = [...new Set(labels)].sort();
  return db.transaction(async (trx) => {
    const before: { labels: string[] } | undefined = await row(trx as unknown as Db, t)
      .forUpdate()
      .first('labels');
    if (!before) return undefined;
    await row(trx as unknown as Db, t).update({ labels: after });
    const same = before.labels.length === after.length && before.labels.every((l) => after.includes(l));
    if (!same) await appendRelabelChanges(trx, t, before.labels);
    return before.labels;
  });
}
