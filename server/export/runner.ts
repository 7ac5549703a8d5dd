import { randomUUID } from 'node:crypto';
import { newCaller, Touched, toRoles, type Caller } from '../access.js';
import { openAudit, recordAudit, type AuditDeps } from '../audit.js';
import { findInstances, findMetadata, type StoredInstance } from '../db/lookup.js';
import { withheldReason } from '../deid/profile.js';
import type { DeidView } from '../deid/research.js';
import type { AppDeps } from '../deps.js';
import type { DicomJson } from '../dicom/json.js';
import type { OutPart } from '../http/multipart.js';
import { exportedBytes, profileView } from './source.js';
import {
  claimJob,
  type Destination,
  findDestination,
  finishJob,
  type ItemRow,
  type ItemState,
  type JobRow,
  pendingItems,
  releaseLease,
  renewLease,
  settleItems,
} from './store.js';
import { stow } from './stow-client.js';
import { pollLoop } from '../poll-loop.js';

// The push job runner: every replica runs one. It takes an unfinished job
// with a lease, sends its pending instances to the destination with STOW-RS
// in batches, records each instance's outcome, and renews the lease after
// each batch. Stopped (a graceful shutdown), it finishes the batch in hand
// and gives the job up at once; killed, its lease runs out and another
// replica (or this one, restarted) takes the job over. An instance is sent
// again only when its batch's outcome was never recorded, and STOW-RS of an
// instance already stored is harmless.

export interface RunnerOptions {
  /** Names this runner in the leases it holds. */
  owner?: string;
  leaseSeconds?: number;
  /** How often an idle runner looks for work. */
  pollMs?: number;
  batchSize?: number;
  /** The most bytes (as stored) of one batch. */
  batchBytes?: number;
  /** How many times a batch the destination could not take is tried before its instances fail. */
  maxAttempts?: number;
  /** The wait before trying again, doubled per attempt. */
  retrySeconds?: number;
  requestTimeoutMs?: number;
}

export interface ExportRunner {
  readonly owner: string;
  /** Looks for work now rather than at the next poll. */
  wake(): void;
  /** Finishes the batch in hand, gives its job up and stops. */
  stop(): Promise<void>;
}

type Deps = Pick<AppDeps, 'db' | 'blobs' | 'config' | 'log' | 'research' | 'presenter' | 'metrics'>;

export function startExportRunner(deps: Deps, options: RunnerOptions = {}): ExportRunner {
  const o = {
    owner: options.owner ?? `cairn-${randomUUID()}`,
    leaseSeconds: options.leaseSeconds ?? 60,
    pollMs: options.pollMs ?? 5000,
    batchSize: options.batchSize ?? 25,
    batchBytes: options.batchBytes ?? 256 * 1024 * 1024,
    maxAttempts: options.maxAttempts ?? 8,
    retrySeconds: options.retrySeconds ?? 15,
    requestTimeoutMs: options.requestTimeoutMs ?? 10 * 60_000,
  };
  const audit = openAudit(deps);
  const loop = pollLoop({
    pollMs: o.pollMs,
    turn: async (stopping) => {
      let job: JobRow | undefined;
      try {
        job = await claimJob(deps.db, o.owner, o.leaseSeconds);
      } catch (err) {
        deps.log.warn({ err }, 'export runner could not look for jobs');
      }
      if (!job) return 'idle';
      try {
        await runJob(deps, audit, o, job, stopping);
      } catch (err) {
        deps.log.error({ err, job: job.id }, 'export job failed; it is tried again later');
        await releaseLease(deps.db, job.id, o.owner, o.retrySeconds).catch(() => undefined);
      }
      return 'busy';
    },
    onError: (err) => deps.log.error({ err }, 'export runner turn failed'),
  });
  return { owner: o.owner, wake: loop.wake, stop: loop.stop };
}

type Options = Required<Omit<RunnerOptions, 'owner'>> & { owner: string };

async function runJob(deps: Deps, audit: AuditDeps, o: Options, job: JobRow, stopping: () => boolean): Promise<void> {
  const destination = job.destination_id ? await findDestination(deps.db, job.destination_id) : undefined;
  if (!destination) return finishJob(deps.db, job.id, o.owner, `the destination "${job.destination_name}" was removed`);
  let view: DeidView | undefined;
  if (job.profile) {
    try {
      view = profileView(deps, job.profile);
    } catch {
      return finishJob(deps.db, job.id, o.owner, `the de-identification profile "${job.profile}" is no longer configured`);
    }
  }
  const caller = jobCaller(job);
  deps.log.info({ job: job.id, destination: destination.name, owner: o.owner }, 'export job taken');
  while (!stopping()) {
    const items = await pendingItems(deps.db, job.id, o.batchSize);
    if (!items.length) {
      await finishJob(deps.db, job.id, o.owner);
      deps.log.info({ job: job.id }, 'export job completed');
      return;
    }
    // A batch slower than the lease (large instances, a slow link) keeps the lease renewed while it runs.
    const heartbeat = setInterval(
      () => void renewLease(deps.db, job.id, o.owner, o.leaseSeconds).catch((err) => deps.log.warn({ err, job: job.id }, 'export lease not renewed')),
      (o.leaseSeconds * 1000) / 3,
    );
    let retry: number | undefined;
    try {
      retry = await sendBatch(deps, audit, o, job, destination, caller, view, items);
    } finally {
      clearInterval(heartbeat);
    }
    if (retry !== undefined) return releaseLease(deps.db, job.id, o.owner, retry);
    // Cancelled, or taken over after this runner held it past its lease: the job is no longer this runner's.
    if (!(await renewLease(deps.db, job.id, o.owner, o.leaseSeconds))) return;
  }
  await releaseLease(deps.db, job.id, o.owner, 0);
}

/**
 * The identity a job reads with: its owner's, as when it was started
 * (labels and break-glass alike). It acts from the server itself, as a
 * command does: its audit rows say so, and the row of the request that
 * started the job holds the client's address.
 */
function jobCaller(job: JobRow): Caller {
  return newCaller(
    { sub: job.sub, roles: toRoles(job.roles), clearances: job.clearances },
    { protocol: 'cli', command: `export job ${job.id}` },
    job.break_glass ?? undefined,
  );
}

type Outcome = { seq: number; state: ItemState; reason?: string; attempted?: boolean };

/**
 * One batch: the items still visible to the job's owner, read and sent in
 * one STOW-RS request. Returns the seconds to wait before trying again when
 * the destination could not take it, else undefined.
 */
async function sendBatch(
  deps: Deps,
  audit: AuditDeps,
  o: Options,
  job: JobRow,
  destination: Destination,
  caller: Caller,
  view: DeidView | undefined,
  items: ItemRow[],
): Promise<number | undefined> {
  const outcomes: Outcome[] = [];
  const sending: { item: ItemRow; row: StoredInstance }[] = [];
  let bytes = 0;
  for (const item of items) {
    const t = { studyUid: item.study_uid, seriesUid: item.series_uid, sopInstanceUid: item.sop_instance_uid };
    const [row] = await findInstances(deps.db, caller, t);
    if (!row) {
      outcomes.push({ seq: item.seq, state: 'failed', reason: 'the instance is no longer stored, or no longer visible to the job owner' });
      continue;
    }
    if (view) {
      const [text] = await findMetadata(deps.db, caller, t);
      const reason = text ? withheldReason(JSON.parse(text) as DicomJson, view.deidentifier.options) : undefined;
      if (reason) {
        outcomes.push({ seq: item.seq, state: 'withheld', reason: `withheld by the de-identification profile: ${reason}` });
        continue;
      }
    }
    // A batch holds at least one instance, however large.
    if (sending.length && bytes + row.size > o.batchBytes) break;
    bytes += row.size;
    sending.push({ item, row });
  }
  let retry: number | undefined;
  if (sending.length) {
    const parts: OutPart[] = sending.map(({ row }) => ({ contentType: 'application/dicom', body: () => exportedBytes(deps, view, row) }));
    const result = await stow(
      destination.url,
      destination.token,
      parts,
      sending.map((s) => s.item.sent_uid),
      o.requestTimeoutMs,
    );
    if (result.kind === 'answered') {
      for (const { item } of sending) {
        const r = result.outcomes.get(item.sent_uid)!;
        outcomes.push(r.stored ? { seq: item.seq, state: 'done', attempted: true } : { seq: item.seq, state: 'failed', reason: r.reason, attempted: true });
      }
    } else {
      const attempt = Math.max(...sending.map((s) => s.item.attempts)) + 1;
      const giveUp = !result.retry || attempt >= o.maxAttempts;
      for (const { item } of sending) outcomes.push({ seq: item.seq, state: giveUp ? 'failed' : 'pending', reason: result.reason, attempted: true });
      if (!giveUp) retry = o.retrySeconds * 2 ** (attempt - 1);
      deps.log.warn({ job: job.id, destination: destination.name, reason: result.reason, attempt, giveUp }, 'export batch not taken by the destination');
    }
  }
  // Audited before recorded: a batch whose outcome is lost is sent (and audited) again, never left unaudited.
  await auditBatch(deps, audit, job, destination, caller, view, items, outcomes);
  await settleItems(deps.db, job.id, outcomes);
  return retry;
}

/**
 * One audit row for the instances that left in a batch, one for those that
 * failed: each names the job, the destination and the profile, so an
 * instance's provenance shows where it went.
 */
async function auditBatch(
  deps: Deps,
  audit: AuditDeps,
  job: JobRow,
  destination: Destination,
  caller: Caller,
  view: DeidView | undefined,
  items: ItemRow[],
  outcomes: Outcome[],
): Promise<void> {
  const bySeq = new Map(items.map((i) => [i.seq, i]));
  const groups: [string, Outcome[]][] = [
    ['success', outcomes.filter((x) => x.state === 'done')],
    ['failure', outcomes.filter((x) => x.state === 'failed')],
  ];
  for (const [outcome, list] of groups) {
    if (!list.length) continue;
    const touched = new Touched();
    for (const x of list) {
      const i = bySeq.get(x.seq)!;
      touched.note({ studyUid: i.study_uid, seriesUid: i.series_uid, sopInstanceUid: i.sop_instance_uid });
    }
    const detail = {
      export: { format: 'stow', job: job.id, destination: { id: destination.id, name: destination.name, url: destination.url }, profile: job.profile },
      ...(outcome === 'failure' ? { reasons: [...new Set(list.map((x) => x.reason))] } : {}),
    };
    await recordAudit(audit, { ...caller, touched }, 'export', outcome, detail);
  }
  if (view && deps.research) {
    // The pseudonyms sent are written, as for a caller shown them: the originals can be found from what the destination holds.
    const shown = newCaller(caller.principal, caller.via);
    for (const x of outcomes.filter((y) => y.state === 'done')) {
      const i = bySeq.get(x.seq)!;
      deps.research.note(shown, view, { studyUid: i.study_uid, seriesUid: i.series_uid, sopInstanceUid: i.sop_instance_uid });
    }
    await deps.research.flush(deps.db, shown);
  }
}
