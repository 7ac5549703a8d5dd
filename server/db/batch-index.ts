import { type IndexOutcome, INSTANCE_COLUMNS, indexInstance, SERIES_COLUMNS, STUDY_COLUMNS } from './write.js';
import { prepared, type Db } from './knex.js';
import type { InstanceRow, SeriesRow, StudyRow } from './rows.js';

/**
 * Writes index rows of instances; see indexInstance. While corked, instances
 * that are ready wait (a reader of a STOW-RS request corks it while it reads
 * more parts), and uncork writes what waited.
 */
export interface InstanceIndexer {
  write(study: StudyRow, series: SeriesRow, instance: InstanceRow, overwrite: boolean): Promise<IndexOutcome>;
  cork(): void;
  uncork(): void;
}

/** Most instances one batch statement writes: a corked indexer writes when this many wait. */
const MAX_BATCH = 32;

/** Longest a ready row waits in a corked indexer before it is written with whatever else waits. */
const CORK_MS = 100;

/**
 * An indexer that writes the instances of one ingest (a STOW-RS request)
 * together: those that are ready while it is corked, or while the previous
 * statement is still running, go in one statement, one round trip and one
 * commit (uncorked, a lone instance is written at once). Corked, no row
 * waits longer than CORK_MS: a slow client sending a long request still sees
 * each instance indexed soon after its blob is durable, as a viewer watching
 * the study would expect, and rows held in memory stay few. Each instance still succeeds or fails alone (PS3.18 §10.5.3): one
 * the batch statement did not write (a duplicate, a series of another study,
 * a rejected UID) is written by indexInstance, which says why; and if the
 * batch statement fails as a whole, every instance of it is written by
 * indexInstance on its own. An outcome settles only once its rows are
 * committed.
 */
export function batchIndexer(db: Db): InstanceIndexer {
  let queue: Pending[] = [];
  let running = false;
  let corked = false;
  // Set when the oldest waiting row has waited CORK_MS: what waits is then written, however few.
  let due = false;
  let timer: NodeJS.Timeout | undefined;
  const ready = () => queue.length > 0 && (!corked || due || queue.length >= MAX_BATCH);
  const arm = () => {
    if (!corked || timer || !queue.length) return;
    timer = setTimeout(() => {
      timer = undefined;
      due = queue.length > 0;
      kick();
    }, CORK_MS);
    timer.unref();
  };
  const drain = async () => {
    while (ready()) {
      due = false;
      const batch = queue.slice(0, MAX_BATCH);
      queue = queue.slice(MAX_BATCH);
      await indexBatch(db, batch);
    }
    running = false;
    arm();
  };
  const kick = () => {
    if (running || !ready()) return;
    running = true;
    // Instances that became ready in the same turn of the event loop go together.
    queueMicrotask(() => void drain());
  };
  return {
    write: (study, series, instance, overwrite) =>
      new Promise<IndexOutcome>((resolve, reject) => {
        queue.push({ study, series, instance, overwrite, resolve, reject });
        arm();
        kick();
      }),
    cork: () => {
      corked = true;
    },
    uncork: () => {
      corked = false;
      clearTimeout(timer);
      timer = undefined;
      kick();
    },
  };
}

interface Pending {
  study: StudyRow;
  series: SeriesRow;
  instance: InstanceRow;
  overwrite: boolean;
  resolve: (o: IndexOutcome) => void;
  reject: (err: unknown) => void;
}

/** Writes a batch; settles every instance of it and never rejects. */
async function indexBatch(db: Db, batch: Pending[]): Promise<void> {
  const alone = (p: Pending) => indexInstance(db, p.study, p.series, p.instance, p.overwrite).then(p.resolve, p.reject);
  const { together, apart } = splitBatch(batch);
  if (together.length < 2) {
    await Promise.all(batch.map(alone));
    return;
  }
  let written: Set<string>;
  try {
    written = await writeBatch(db, together);
  } catch {
    // One bad row fails the statement: each instance then gets its own outcome.
    await Promise.all(batch.map(alone));
    return;
  }
  for (const p of together) if (written.has(p.instance.sop_instance_uid)) p.resolve({ kind: 'stored' });
  await Promise.all([...together.filter((p) => !written.has(p.instance.sop_instance_uid)), ...apart].map(alone));
}

/**
 * The instances one batch statement may write: without labels to add (their
 * study and series rows are then written once, whichever instance gives
 * them), each SOP Instance UID once, and each series in one study. The rest
 * are written alone, after the batch.
 */
function splitBatch(batch: Pending[]): { together: Pending[]; apart: Pending[] } {
  const together: Pending[] = [];
  const apart: Pending[] = [];
  const sops = new Set<string>();
  const seriesStudy = new Map<string, string>();
  for (const p of batch) {
    const owner = seriesStudy.get(p.series.series_uid);
    if (p.study.labels.length || p.series.labels.length || sops.has(p.instance.sop_instance_uid) || (owner !== undefined && owner !== p.study.study_uid)) {
      apart.push(p);
      continue;
    }
    sops.add(p.instance.sop_instance_uid);
    seriesStudy.set(p.series.series_uid, p.study.study_uid);
    together.push(p);
  }
  return { together, apart };
}

/** Runs the batch statement; resolves to the SOP Instance UIDs it wrote. */
async function writeBatch(db: Db, batch: Pending[]): Promise<Set<string>> {
  // Rows in key order, so that two batches meeting on the same keys lock them in the same order.
  const byKey = <T>(rows: Map<string, T>) => [...rows.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);
  const studies = new Map(batch.map((p) => [p.study.study_uid, p.study]));
  const series = new Map(batch.map((p) => [p.series.series_uid, p.series]));
  const instances = new Map(batch.map((p) => [p.instance.sop_instance_uid, p.instance]));
  const rows = await prepared<{ sop_instance_uid: string }>(db, 'cairn_index_batch', BATCH_STATEMENT, [
    JSON.stringify(byKey(studies)),
    JSON.stringify(byKey(series)),
    JSON.stringify(byKey(instances)),
  ]);
  return new Set(rows.map((r) => r.sop_instance_uid));
}

/**
 * The store statement for many instances without labels to add: the rows
 * come as three JSON arrays read by jsonb_populate_recordset with each
 * table's own row type, so a column's type is the table's, as for the
 * one-instance statement. The checks are those of INDEX_STATEMENTS; every
 * instance row written gets its change row in the same statement.
 */
const BATCH_STATEMENT = (() => {
  const quoted = (cols: readonly string[], prefix = ''): string => cols.map((c) => `${prefix}"${c}"`).join(', ');
  return `with s as (insert into studies (${quoted(STUDY_COLUMNS)}) select ${quoted(STUDY_COLUMNS)} from jsonb_populate_recordset(null::studies, $1::jsonb)
      on conflict (study_uid) do nothing),
    se as (insert into series (${quoted(SERIES_COLUMNS)}) select ${quoted(SERIES_COLUMNS)} from jsonb_populate_recordset(null::series, $2::jsonb)
      on conflict (series_uid) do nothing),
    i as (insert into instances (${quoted(INSTANCE_COLUMNS)}) select ${quoted(INSTANCE_COLUMNS, 'r.')} from jsonb_populate_recordset(null::instances, $3::jsonb) as r
      where not exists (select 1 from series where series_uid = r.series_uid and study_uid <> r.study_uid)
        and not exists (select 1 from rejections where sop_instance_uid = r.sop_instance_uid)
      on conflict (sop_instance_uid) do nothing returning study_uid, series_uid, sop_instance_uid),
    c as (insert into changes (kind, study_uid, series_uid, sop_instance_uid) select 'stored', study_uid, series_uid, sop_instance_uid from i)
    select sop_instance_uid from i`;
})();
