// Does Cairn stay flat as its index grows? Two Cairns side by side, one with a
// small index and one with a large one (filled by bench/fill.ts), measured in
// turns (A, B, B, A, A, B, …) so that both meet the same moments of a shared
// machine, with the CPU each request cost the server and its PostgreSQL.
//
//   npx tsx bench/scale.ts [--small 10000] [--large 1000000] [--rounds 3] [--stow-instances 400]
//     [--large-data DIR] [--out file.json]
//
// --large-data reuses the data folder of an archive already filled (a bench run
// with BENCH_KEEP_DATA=1) instead of filling a new one; it is kept.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { closeAgent, getJson, latency, loop, request, setDefaultHeaders, stow, type LoopResult } from './client.js';
import { batches, newPatient, newStudy, type Batch } from './data.js';
import { sqlFill } from './fill.js';
import { fmt, lat, round, table, type Lat, type Row } from './stats.js';
import { startCairn, type Cairn } from './target.js';

const { values: a } = parseArgs({
  options: {
    small: { type: 'string', default: '10000' },
    large: { type: 'string', default: '1000000' },
    rounds: { type: 'string', default: '3' },
    'stow-instances': { type: 'string', default: '400' },
    'large-data': { type: 'string' },
    out: { type: 'string' },
  },
});
const ROUNDS = Math.max(1, Number(a.rounds));
const STOW_N = Math.max(10, Number(a['stow-instances']));
const log = (m: string): void => {
  process.stderr.write(`[scale ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
};

interface Side {
  name: string;
  cairn: Cairn;
  instances: number;
  patients: string[];
  surnames: string[];
  big: { study: string; series: string };
  rounds: RoundResult[];
}
interface Cpu {
  cairnMs: number;
  pgMs: number;
}
interface RoundResult {
  patientId: Lat & Cpu;
  patientName: Lat & Cpu;
  seriesMetadata500: Lat & Cpu;
  stow: { instancesPerSec: number | null; failed: number } & Cpu;
}

const TICK_MS = 10; // /proc/<pid>/stat counts in USER_HZ, 100 a second on Linux

function ticks(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]);
  } catch {
    return 0;
  }
}

/** The embedded PostgreSQL's postmaster and its children (one backend per pooled connection). */
function pgPids(dataDir: string): number[] {
  let master: number;
  try {
    master = Number(readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return [];
  }
  const out = [master];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const f = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(f.slice(f.lastIndexOf(')') + 2).split(' ')[1]) === master) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Runs `fn` and the CPU the server and its PostgreSQL spent meanwhile. */
async function withCpu<T>(s: Side, fn: () => Promise<T>): Promise<[T, { cairn: number; pg: number }]> {
  const pgs = pgPids(s.cairn.dataDir);
  const c0 = ticks(s.cairn.pid);
  const p0 = pgs.reduce((n, p) => n + ticks(p), 0);
  const r = await fn();
  const c1 = ticks(s.cairn.pid);
  const p1 = pgs.reduce((n, p) => n + ticks(p), 0);
  return [r, { cairn: (c1 - c0) * TICK_MS, pg: (p1 - p0) * TICK_MS }];
}

const perRequest = (r: LoopResult, cpu: { cairn: number; pg: number }): Cpu => ({
  cairnMs: round(cpu.cairn / Math.max(1, r.count)) ?? 0,
  pgMs: round(cpu.pg / Math.max(1, r.count)) ?? 0,
});

async function stowAll(base: string, list: Batch[]): Promise<{ instances: number; failed: number; ms: number }> {
  const total = list.reduce((n, b) => n + b.files.length, 0);
  let i = 0;
  let instances = 0;
  const r = await loop(4, Infinity, 600_000, async () => {
    const b = list[i++];
    if (!b) return null;
    const rep = await stow(base, b.files);
    // Counted only when every instance of the request was stored (200, no FailedSOPSequence).
    if (rep.status === 200) instances += b.files.length;
    return rep;
  });
  return { instances, failed: total - instances, ms: r.elapsedMs };
}

const fullSize = (n: number): Batch[] => [
  ...batches(
    (function* () {
      for (;;) yield newStudy(newPatient(), [50, 50, 50, 50]);
    })(),
    10,
    512,
    n,
  ),
];

async function prepare(name: string, size: number, dataDir?: string): Promise<Side> {
  log(`${name}: starting Cairn${dataDir ? ` on ${dataDir}` : ''}`);
  const cairn = await startCairn(300_000, { dataDir });
  setDefaultHeaders({ Authorization: `Bearer ${cairn.token}` });
  log(`${name}: warm-up, ${STOW_N} full-size instances by STOW`);
  await stowAll(cairn.base, fullSize(STOW_N));
  const db = new pg.Client({ connectionString: cairn.dbUrl });
  await db.connect();
  try {
    let count = Number((await db.query('select count(*) from instances')).rows[0].count);
    if (!dataDir) {
      log(`${name}: template studies by STOW, then rows generated in PostgreSQL to ${size} instances`);
      const small = newStudy(newPatient(), [10, 10]);
      const big = newStudy(newPatient(), [500]);
      const t = await stowAll(cairn.base, [...batches([small, big], 50, 64)]);
      if (t.failed) throw new Error(`${name}: the template studies were not stored`);
      count += t.instances;
      const templates = [
        { studyUid: big.uid, every: 1000, slot: 999 },
        { studyUid: small.uid, every: 1, slot: 0 },
      ];
      const f = await sqlFill(cairn.dbUrl, templates, Math.max(0, size - count), 0, log);
      log(`${name}: ${f.instances} instances generated in ${fmt(round(f.insertSeconds), ' s')}, settled in ${fmt(round(f.settleSeconds), ' s')}`);
      count += f.instances;
    }
    const ps = (await db.query(`select patient_id, split_part(patient_name, '^', 1) as surname from studies where patient_id like 'BENCH%-G%'`)).rows as {
      patient_id: string;
      surname: string;
    }[];
    const big = (await db.query('select study_uid, series_uid from instances group by study_uid, series_uid having count(*) = 500 limit 1')).rows[0];
    if (!ps.length || !big) throw new Error(`${name}: no generated patients or no 500-instance series in the index`);
    return {
      name,
      cairn,
      instances: count,
      patients: ps.map((p) => p.patient_id),
      surnames: [...new Set(ps.map((p) => p.surname))],
      big: { study: big.study_uid, series: big.series_uid },
      rounds: [],
    };
  } finally {
    await db.end();
  }
}

async function round1(s: Side, r: number): Promise<void> {
  setDefaultHeaders({ Authorization: `Bearer ${s.cairn.token}` });
  const b = s.cairn.base;
  const pick = (i: number): string => s.patients[(i * 7919 + r * 104729) % s.patients.length];
  const [id, idCpu] = await withCpu(s, () => latency(50, 60_000, (i) => getJson(`${b}/studies?PatientID=${encodeURIComponent(pick(i))}`)));
  const [name, nameCpu] = await withCpu(s, () =>
    latency(20, 60_000, (i) => getJson(`${b}/studies?PatientName=${encodeURIComponent(`${s.surnames[(i + r) % s.surnames.length]}*`)}`)),
  );
  const [meta, metaCpu] = await withCpu(s, () =>
    latency(10, 60_000, () => request('GET', `${b}/studies/${s.big.study}/series/${s.big.series}/metadata`, { Accept: 'application/dicom+json' })),
  );
  const list = fullSize(STOW_N);
  const [st, stCpu] = await withCpu(s, () => stowAll(b, list));
  s.instances += st.instances;
  s.rounds.push({
    patientId: { ...lat(id), ...perRequest(id, idCpu) },
    patientName: { ...lat(name), ...perRequest(name, nameCpu) },
    seriesMetadata500: { ...lat(meta), ...perRequest(meta, metaCpu) },
    stow: {
      instancesPerSec: round(st.instances / (st.ms / 1000), 1),
      failed: st.failed,
      cairnMs: round(stCpu.cairn / Math.max(1, st.instances)) ?? 0,
      pgMs: round(stCpu.pg / Math.max(1, st.instances)) ?? 0,
    },
  });
  log(
    `${s.name} round ${r + 1}: PatientID p95 ${fmt(lat(id).p95, ' ms')}, metadata(500) p95 ${fmt(lat(meta).p95, ' ms')}, STOW ${fmt(round(st.instances / (st.ms / 1000), 1), ' inst/s')}`,
  );
}

const median = (v: (number | null)[]): number | null => {
  const x = v.filter((n): n is number => n !== null).sort((p, q) => p - q);
  return x.length ? x[Math.floor(x.length / 2)] : null;
};

const sides: Side[] = [];
try {
  sides.push(await prepare('small', Number(a.small)));
  sides.push(await prepare('large', Number(a.large), a['large-data']));
  for (let r = 0; r < ROUNDS; r++) for (const s of r % 2 ? [...sides].reverse() : sides) await round1(s, r);
} finally {
  closeAgent();
  for (const s of sides) await s.cairn.stop();
}
const [A, B] = sides;
type Pick = (x: RoundResult) => number | null;
const figures: [string, Pick, Pick, Pick][] = [
  ['QIDO PatientID p95 ms', (x) => x.patientId.p95, (x) => x.patientId.cairnMs, (x) => x.patientId.pgMs],
  ['QIDO PatientID p50 ms', (x) => x.patientId.p50, (x) => x.patientId.cairnMs, (x) => x.patientId.pgMs],
  ['QIDO PatientName prefix p95 ms', (x) => x.patientName.p95, (x) => x.patientName.cairnMs, (x) => x.patientName.pgMs],
  ['Series metadata (500) p95 ms', (x) => x.seriesMetadata500.p95, (x) => x.seriesMetadata500.cairnMs, (x) => x.seriesMetadata500.pgMs],
  ['Series metadata (500) p50 ms', (x) => x.seriesMetadata500.p50, (x) => x.seriesMetadata500.cairnMs, (x) => x.seriesMetadata500.pgMs],
  ['STOW inst/s (CPU per instance)', (x) => x.stow.instancesPerSec, (x) => x.stow.cairnMs, (x) => x.stow.pgMs],
];
const rows: Row[] = [
  [
    '',
    `small: ${A.instances} instances | large: ${B.instances} instances | large ÷ small  (medians of ${ROUNDS} rounds in turns; CPU ms per request: Cairn + PostgreSQL)`,
  ],
];
const comparison: Record<string, unknown> = {};
for (const [label, v, c, p] of figures) {
  const m = (s: Side, f: Pick) => median(s.rounds.map(f));
  const [va, vb] = [m(A, v), m(B, v)];
  const ratio = va && vb !== null ? round(vb / va) : null;
  comparison[label] = { small: va, large: vb, ratio, cpu: { small: { cairn: m(A, c), pg: m(A, p) }, large: { cairn: m(B, c), pg: m(B, p) } } };
  rows.push([label, `${fmt(va)} | ${fmt(vb)} | ${fmt(ratio)}   CPU ${fmt(m(A, c))} + ${fmt(m(A, p))} | ${fmt(m(B, c))} + ${fmt(m(B, p))}`]);
}
console.log(table(rows));
const result = {
  date: new Date().toISOString(),
  rounds: ROUNDS,
  stowInstances: STOW_N,
  sides: sides.map(({ cairn: _c, patients: _p, ...s }) => s),
  comparison,
};
console.log(`SCALE_JSON ${JSON.stringify(result)}`);
if (a.out) writeFileSync(String(a.out), `${JSON.stringify(result, null, 2)}\n`);
