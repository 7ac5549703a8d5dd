import { randomUUID } from 'node:crypto';
import { newCaller, toRoles, type Caller } from '../access.js';
import { openAudit, recordAudit, type AuditDeps } from '../audit.js';
import { latestChange, readChanges, type ChangePage } from '../db/changes.js';
import type { Db } from '../db/knex.js';
import { searchIndex } from '../db/search.js';
import type { AppDeps } from '../deps.js';
import { Tag } from '../dicom/tags.js';
import { parseQidoQuery } from '../dicomweb/qido-params.js';
import { claimLiveCollections, releaseLiveCollections, settleGrowth, type LiveCollection } from './rows.js';
import { pollLoop } from '../poll-loop.js';

// Live query collections: a collection made from a QIDO-RS query follows the
// archive's change sequence (the `changes` table, the one the change feed
// reads), so studies stored later that match its query join it, and a study
// it found that no longer matches (relabelled out of its maker's sight,
// rejected, deleted) leaves.
//
// Every replica runs one runner. It takes the live collections behind the
// newest change with a lease (collections.lease_owner until lease_until, as
// export jobs are taken), reads the changes after each one's position, and
// evaluates the query for the studies those changes name only, as the
// collection's maker: the roles and clearances it had when it made the
// collection, never more (a steward cannot gain a study it could not see),
// without break-glass, which is one request's and not a standing right.
// The members and the new position are written in one transaction, only
// while the lease is still the runner's; a runner killed mid-way leaves the
// position where it was, and whoever takes the collection next evaluates
// those studies again (joining and leaving are idempotent).

export interface GrowerOptions {
  owner?: string;
  leaseSeconds?: number;
  /** How often the runner looks for new changes. */
  pollMs?: number;
  /** The most live collections one runner holds at once. */
  batch?: number;
}

export interface CollectionGrower {
  readonly owner: string;
  /** Looks now rather than at the next poll. */
  wake(): void;
  /** Finishes the collection in hand, gives every collection up and stops. */
  stop(): Promise<void>;
}

type Deps = Pick<AppDeps, 'db' | 'config' | 'log' | 'metrics'>;

/** Changes read at a time. */
const PAGE = 1000;
/** Pages one collection is brought through before the next gets its turn. */
const PAGES_PER_TURN = 20;

export function startCollectionGrower(deps: Deps, options: GrowerOptions = {}): CollectionGrower {
  const o = {
    owner: options.owner ?? `cairn-${randomUUID()}`,
    leaseSeconds: options.leaseSeconds ?? 60,
    pollMs: options.pollMs ?? 2000,
    batch: options.batch ?? 50,
  };
  const audit = openAudit(deps);
  const loop = pollLoop({
    pollMs: o.pollMs,
    turn: async (stopping) => {
      const held = await claimLiveCollections(deps.db, o.owner, o.leaseSeconds, o.batch);
      // Collections at the same position (most, once they have caught up) share each read of the changes.
      const pages = new Map<number, Promise<ChangePage>>();
      const readPage = (from: number) => {
        let page = pages.get(from);
        if (!page) pages.set(from, (page = readChanges(deps.db, FEED_READER, from, PAGE)));
        return page;
      };
      for (const c of held) {
        if (stopping()) break;
        // One collection that cannot be brought forward now holds back no other.
        await bringForward(deps, audit, o.owner, c, readPage, stopping).catch((err) =>
          deps.log.warn({ err, collection: c.id }, 'live collection not brought forward; tried again at the next poll'),
        );
      }
      return 'idle';
    },
    onError: (err) => deps.log.warn({ err }, 'live collections not brought forward; tried again at the next poll'),
    last: () => releaseLiveCollections(deps.db, o.owner).catch((err) => deps.log.warn({ err }, 'live collections not released')),
  });
  return { owner: o.owner, wake: loop.wake, stop: loop.stop };
}

/**
 * Who reads the change sequence: every change, whatever its labels, as the
 * runner must see a study leave its maker's sight too. Only UIDs are read,
 * and nothing of them leaves the server.
 */
const FEED_READER = newCaller(
  { sub: 'cairn', roles: ['admin'], clearances: [] },
  { protocol: 'cli', command: 'collection-grow' },
  'live collections follow every change',
);

async function bringForward(
  deps: Deps,
  audit: AuditDeps,
  owner: string,
  c: LiveCollection,
  readPage: (from: number) => Promise<ChangePage>,
  stopping: () => boolean,
): Promise<void> {
  const maker = makerCaller(c);
  let position = c.feedSeq;
  for (let turn = 0; turn < PAGES_PER_TURN && !stopping(); turn++) {
    const page = await readPage(position);
    if (page.next <= position) return;
    const studies = [...new Set(page.changes.map((x) => x.studyUid))];
    const matched = await matchingStudies(deps.db, maker, c.query, studies);
    const settled = await settleGrowth(deps.db, c, owner, studies, matched, page.next);
    if (!settled) return; // frozen, removed, or taken over since it was claimed
    if (settled.joined.length || settled.left.length) {
      deps.log.info({ collection: c.id, joined: settled.joined.length, left: settled.left.length }, 'live collection changed');
      // Audited as the maker's own change of the collection; the row's study UIDs are those that joined and left.
      const changed = newCaller(maker.principal, maker.via);
      changed.touched.noteAll([...settled.joined, ...settled.left].map((studyUid) => ({ studyUid })));
      await recordAudit(audit, changed, 'collection-change', 'success', {
        collection: c.id,
        live: true,
        joined: settled.joined.length,
        left: settled.left.length,
      });
    }
    position = page.next;
  }
}

/** The collection's maker as it was when the collection was made. */
function makerCaller(c: LiveCollection): Caller {
  return newCaller(
    { sub: c.createdBy, roles: toRoles(c.makerRoles), clearances: Object.freeze([...c.makerClearances]) },
    { protocol: 'cli', command: `live collection ${c.id}` },
  );
}

/** The studies among `studies` that the query matches, for `caller`. */
export async function matchingStudies(db: Db, caller: Caller, query: string, studies: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  const q = parseQidoQuery(query, 'study');
  for (let i = 0; i < studies.length; i += PAGE) {
    const some = studies.slice(i, i + PAGE);
    const rows = await searchIndex(db, caller, {
      level: 'study',
      // PS3.4 §C.2.2.2.2: UID list matching narrows the query to the studies the changes name.
      matches: [...q.matches, { tag: Tag.StudyInstanceUID, cond: { op: 'in', values: some } }],
      scope: {},
      limit: some.length,
      offset: 0,
      load: { study: false, studyCounts: false, series: false, seriesCount: false, metadata: false },
    });
    found.push(...rows.map((r) => r.studyUid));
  }
  return found;
}

/** Where a new live collection starts following the change sequence: after the newest change no write still in progress can precede. */
export async function feedPosition(db: Db): Promise<number> {
  return (await latestChange(db, FEED_READER))?.seq ?? 0;
}
