// Cairn black-box DICOMweb benchmark. Usage: npm run bench -- [--base URL [--token JWT]] [--sizes 10000,100000]
//   [--stow-instances 400] [--pid PID] [--out file.json] [--concurrency 4]
//   [--no-memory] [--memory-request-mb 1024] [--memory-instance-mb 500]
//   [--no-cstore] [--dimse-port P [--dimse-ae TITLE]] [--cstore-dir DIR]
//   [--fill sql|stow] [--database-url URL] [--stow-fill-max N] [--transcode-instances 80]
import { parseArgs } from 'node:util';
import { rmSync, writeFileSync } from 'node:fs';
import { batches, newPatient, newStudy, type InstanceRef, type Batch } from './data.js';
import {
  assertLoopback,
  closeAgent,
  DICOM_MULTIPART,
  FRAME_ACCEPT,
  getJson,
  latency,
  loop,
  request,
  setDefaultHeaders,
  stow,
  type LoopResult,
  type Reply,
} from './client.js';
import { fmt, fmtLat, lat, mbps, round, RssSampler, status, table, type Lat, type Row } from './stats.js';
import { memoryPhases, type MemoryResult, type StreamResult } from './memory.js';
import { renderPhases } from './render.js';
import { transcodePhase } from './transcode.js';
import { startCairn, startFloorServer, startYardstick, type Cairn } from './target.js';
import { importPhase, type ImportResult } from './import.js';
import { sqlFill, type Template } from './fill.js';
import { BENCH_AE, cstorePhase, storescuInstalled, writeCStoreFiles, type CStoreResult, type CStoreTarget } from './cstore.js';

const { values: a } = parseArgs({
  options: {
    base: { type: 'string' },
    token: { type: 'string' },
    sizes: { type: 'string', default: '10000,100000' },
    'stow-instances': { type: 'string', default: '400' },
    pid: { type: 'string' },
    out: { type: 'string' },
    concurrency: { type: 'string', default: '4' },
    'fill-batch': { type: 'string', default: '50' },
    'fill-minutes': { type: 'string', default: '60' },
    'no-memory': { type: 'boolean', default: false },
    'memory-request-mb': { type: 'string', default: '1024' },
    'memory-instance-mb': { type: 'string', default: '500' },
    orthanc: { type: 'boolean', default: false },
    'no-cstore': { type: 'boolean', default: false },
    'dimse-port': { type: 'string' },
    'dimse-ae': { type: 'string', default: 'CAIRN' },
    'cstore-dir': { type: 'string' },
    fill: { type: 'string' },
    'database-url': { type: 'string' },
    'stow-fill-max': { type: 'string', default: '100000' },
    'transcode-instances': { type: 'string', default: '80' },
  },
});
if (a.orthanc) {
  const { compareWithOrthanc } = await import('./compare.js');
  await compareWithOrthanc(process.argv.slice(2), a.out);
  process.exit(0);
}
const SERIES = 50;
const BIG_SERIES = 500;
const ROWS = 512;
const FILL_ROWS = 64;
const conc = Math.max(1, Number(a.concurrency));
const stowN = Math.max(SERIES, Number(a['stow-instances']));
const WARM_UP = stowN;
const sizes = String(a.sizes)
  .split(',')
  .map(Number)
  .filter((n) => n > 0)
  .sort((x, y) => x - y);
const fillBatch = Math.max(1, Number(a['fill-batch']));
const fillDeadline = Date.now() + Number(a['fill-minutes']) * 60_000;
const stowFillMax = Number(a['stow-fill-max']);
let sampler: RssSampler | undefined;
const log = (m: string): void => {
  if (sampler) sampler.phase = m;
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
};

let cairn: Cairn | undefined;
let base: string;
let pid: number | undefined;
if (a.base) {
  base = String(a.base).replace(/\/+$/, '');
  assertLoopback(base);
  pid = a.pid ? Number(a.pid) : undefined;
  if (a.token) setDefaultHeaders({ Authorization: `Bearer ${a.token}` });
} else {
  log('starting Cairn (built, then node dist/server/main.js, as npm start runs it), access control on');
  // Its DIMSE listener is on for the C-STORE phase (which loads dcmjs-dimse into the process).
  cairn = await startCairn(60_000, a['no-cstore'] || !storescuInstalled() ? {} : { dimseAe: BENCH_AE });
  base = cairn.base;
  pid = cairn.pid;
  setDefaultHeaders({ Authorization: `Bearer ${cairn.token}` });
}
// The index fill: rows generated in Cairn's PostgreSQL (bench/fill.ts) when the bench can reach
// it (the Cairn it started, or --database-url), else STOW-RS of small instances.
const dbUrl = a['database-url'] ?? cairn?.dbUrl;
const fillMode = a.fill ?? (dbUrl ? 'sql' : 'stow');
if (fillMode !== 'sql' && fillMode !== 'stow') throw new Error(`--fill is sql or stow, not ${fillMode}`);
if (fillMode === 'sql' && !dbUrl) throw new Error('--fill sql needs the Cairn the bench starts, or --database-url of the --base server');
sampler = pid ? new RssSampler(pid).start() : undefined;
const onSignal = (): void => {
  void cairn?.stop().finally(() => process.exit(130));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

/** Sums STOW failures: non-2xx replies, plus FailedSOPSequence (0008,1198) items in a 2xx reply. */
function failedCount(r: Reply, sent: number): number {
  const success = r.status >= 200 && r.status < 300;
  let listed: number | undefined;
  try {
    const j = JSON.parse(r.body?.toString('utf8') || '{}') as Record<string, { Value?: unknown[] }>;
    listed = j['00081198']?.Value?.length;
  } catch {
    /* not JSON */
  }
  return success ? Math.min(sent, listed ?? 0) : sent;
}

interface StowRun {
  instances: number;
  failed: number;
  bytes: number;
  ms: number;
  refs: InstanceRef[];
  first?: Uint8Array;
  firstError?: string;
}
/** Sends every batch of `gen` with `conc` concurrent clients. */
async function stowAll(gen: Iterator<Batch>, maxMs: number, keepRefs: boolean): Promise<StowRun> {
  const run: StowRun = { instances: 0, failed: 0, bytes: 0, ms: 0, refs: [] };
  const r = await loop(
    conc,
    Infinity,
    maxMs,
    async () => {
      const b = gen.next();
      if (b.done) return null;
      run.first ??= b.value.files[0];
      const rep = await stow(base, b.value.files);
      const failed = failedCount(rep, b.value.files.length);
      if (failed) run.firstError ??= `HTTP ${rep.status} ${rep.body?.toString('utf8').slice(0, 300) ?? ''}`;
      run.failed += failed;
      run.instances += b.value.files.length - failed;
      run.bytes += b.value.bytes;
      if (keepRefs && failed === 0) run.refs.push(...b.value.refs);
      return { ...rep, status: failed ? 500 : 200 };
    },
    () => true,
  );
  run.ms = r.elapsedMs;
  run.firstError ??= r.firstError;
  if (r.errors) run.failed += r.errors;
  return run;
}

const ok = (s: number): boolean => s === 200;
const get = (url: string, accept: string): Promise<Reply> => request('GET', url, { Accept: accept });
const instUrl = (r: InstanceRef): string => `${base}/studies/${r.study}/series/${r.series}/instances/${r.sop}`;
const seriesUrl = (r: InstanceRef): string => `${base}/studies/${r.study}/series/${r.series}`;
let stored = 0;

// 0. Warm-up, untimed and the same for every server: a freshly started
// process (JIT, connection pools, page cache) is slower than one in service.
// As many instances as the measured STOW phase, so that phase meets the
// server in service rather than still starting up.
log(`warm-up: ${WARM_UP} instances stored, untimed`);
const warm = await stowAll(
  batches(
    (function* () {
      for (;;) yield newStudy(newPatient(), [40]);
    })(),
    10,
    ROWS,
    WARM_UP,
  ),
  120_000,
  true,
);
stored += warm.instances;

// 1. STOW throughput with full-size CT instances (4 series of 50 per study).
log(`STOW: ${stowN} instances of ${ROWS}x${ROWS} 16-bit, ${conc} clients x 10 instances/request`);
// The requests are built before the clock starts (about 0.5 MB each instance,
// so stowN of them in the bench's memory): building them cost the client
// about 2 ms of CPU an instance, taken from the server on a small machine.
async function stowPhase(): Promise<StowRun & { genMs: number }> {
  const t0Gen = performance.now();
  const stowBatches = [
    ...batches(
      (function* () {
        for (;;) yield newStudy(newPatient(), [SERIES, SERIES, SERIES, SERIES]);
      })(),
      10,
      ROWS,
      stowN,
    ),
  ];
  const genMs = performance.now() - t0Gen;
  const run = await stowAll(stowBatches.values(), 600_000, true);
  stowBatches.length = 0;
  return { ...run, genMs };
}
const st = await stowPhase();
const stowGenMs = st.genMs;
stored += st.instances;
// A failed phase is reported as failed; the phases after it still run (and report their own errors).
if (!st.refs.length || !st.first) log(`STOW phase stored nothing: ${st.firstError ?? 'unknown error'}`);
const instanceBytes = st.first?.byteLength ?? 0;
const full = new Map<string, InstanceRef[]>();
for (const r of st.refs) full.set(r.series, [...(full.get(r.series) ?? []), r]);
const series50 = [...full.values()].filter((v) => v.length === SERIES);
if (!series50.length) log('no complete 50-instance series was stored: series phases will fail');
const s50 = series50[0]?.[0];

// 1b. Bulk import of the same kind of instances from a folder (npm run import,
// `conc` files in flight), beside STOW's figure. Only against the Cairn the
// bench started: the command needs its data folder and database.
let imported: ImportResult | undefined;
if (cairn) {
  log(`import: ${stowN} instances of ${ROWS}x${ROWS} written to a folder, then npm run import -- --workers ${conc}`);
  imported = await importPhase(cairn.env, stowN, ROWS, SERIES, conc);
  if (imported.error) log(`import phase: ${imported.error}`);
  stored += imported.instances;
}

// 1c. C-STORE of the same kind of instances (DCMTK's storescu, `conc`
// associations at once) into the server's DICOM port: the Cairn the bench
// started, or --dimse-port of a --base server. The files are written before
// the clock starts, or given (--cstore-dir) so two servers get the same files.
let cstore: CStoreResult | undefined;
const dimseTarget: CStoreTarget | undefined = cairn?.dimsePort
  ? { host: '127.0.0.1', port: cairn.dimsePort, calledAe: 'CAIRN' }
  : a['dimse-port']
    ? { host: '127.0.0.1', port: Number(a['dimse-port']), calledAe: String(a['dimse-ae']) }
    : undefined;
if (dimseTarget && !a['no-cstore'] && storescuInstalled()) {
  const given = a['cstore-dir'];
  log(`C-STORE: ${given ? `the files in ${given}` : `${stowN} instances of ${ROWS}x${ROWS}`}, storescu over ${conc} associations to ${dimseTarget.calledAe}`);
  const dir = given ?? writeCStoreFiles(stowN, ROWS, SERIES, conc);
  try {
    cstore = await cstorePhase(dimseTarget, dir);
  } finally {
    if (!given) rmSync(dir, { recursive: true, force: true });
  }
  if (cstore.error) log(`C-STORE phase: ${cstore.error}`);
  stored += cstore.instances;
}

// 2. WADO-RS retrieve, and the yardstick with the same client loop. The two
// take turns, ROUNDS times, and the medians are compared: on a shared machine
// the throughput of either moves a lot from one second to the next.
const ROUNDS = 3;
log('WADO-RS retrieve and the yardstick (in-process node:http serving the same instance bytes), alternating');
const warmRefs = warm.refs.length ? warm.refs : st.refs;
await loop(conc, 200, 30_000, (i) => get(instUrl(warmRefs[i % warmRefs.length]), DICOM_MULTIPART), ok);
const seriesN = Math.max(8, series50.length * 2);
if (warm.refs.length) await loop(conc, 4, 30_000, () => get(seriesUrl(warm.refs[0]), DICOM_MULTIPART), ok);
const yard = await startYardstick(st.first ?? new Uint8Array(0), SERIES);
await loop(conc, 200, 30_000, () => get(yard.url, DICOM_MULTIPART), ok);
const wadoIRounds: LoopResult[] = [];
const yardIRounds: LoopResult[] = [];
const wadoSRounds: LoopResult[] = [];
const yardSRounds: LoopResult[] = [];
for (let r = 0; r < ROUNDS; r++) {
  wadoIRounds.push(await loop(conc, 400, 30_000, (i) => get(instUrl(st.refs[i % st.refs.length]), DICOM_MULTIPART), ok));
  yardIRounds.push(await loop(conc, 400, 30_000, () => get(yard.url, DICOM_MULTIPART), ok));
  wadoSRounds.push(await loop(conc, seriesN, 60_000, (i) => get(seriesUrl(series50[i % series50.length][0]), DICOM_MULTIPART), ok));
  yardSRounds.push(await loop(conc, seriesN, 60_000, () => get(yard.seriesUrl, DICOM_MULTIPART), ok));
}
await yard.close();
// The floor of this machine for one small request between two processes,
// sequential: no server answers faster than this, whatever it does.
const floorServer = await startFloorServer();
const floor = await latency(200, 20_000, () => get(floorServer.url, 'application/json'));
floorServer.close();
log('frame retrieve');
const frames = await latency(50, 20_000, (i) => get(`${instUrl(st.refs[i % st.refs.length])}/frames/1`, FRAME_ACCEPT));
log('QIDO instances of a 50-instance series, series metadata (50)');
const qidoSeries = await latency(50, 20_000, () => get(`${seriesUrl(s50)}/instances`, 'application/dicom+json'));
const meta50 = await latency(30, 30_000, (i) => get(`${seriesUrl(series50[i % series50.length][0])}/metadata`, 'application/dicom+json'));
const render = await renderPhases(base, st.refs, `${seriesUrl(s50)}/instances`, conc, log);
// 2b. JPEG 2000 lossless instances of the same CT, retrieved as Explicit VR LE: the server decodes
// every one. A server other than the Cairn the bench started that cannot is n/a, not failed.
const transcode = await transcodePhase(base, Math.max(1, Number(a['transcode-instances'])), ROWS, conc, !cairn, log);
if (transcode.firstError) log(`transcode phase: ${transcode.firstError}`);
stored += transcode.instances;

// 3. Index fill with small instances, then QIDO at each index size.
log(`fill: one ${BIG_SERIES}-instance series (${FILL_ROWS}x${FILL_ROWS})`);
const bigStudy = newStudy(newPatient(), [BIG_SERIES]);
const big = await stowAll(batches([bigStudy], fillBatch, FILL_ROWS), 600_000, false);
stored += big.instances;
const bigRef: InstanceRef = { study: bigStudy.uid, series: bigStudy.series[0].uid, sop: '' };
log('series metadata (500)');
const meta500 = await latency(10, 60_000, () => get(`${seriesUrl(bigRef)}/metadata`, 'application/dicom+json'));

const patients: string[] = [];
const surnames = new Set<string>();
const fillStudyUids: string[] = [];
const fillStudies = (function* () {
  for (;;) {
    const p = newPatient();
    patients.push(p.id);
    surnames.add(p.name.split('^')[0]);
    const s = newStudy(p, [10, 10]);
    fillStudyUids.push(s.uid);
    yield s;
  }
})();
interface SizeResult {
  targetInstances: number;
  storedByThisRun: number;
  /** Why this size was not measured (a STOW fill past --stow-fill-max). */
  skipped?: string;
  fill?: {
    mode: 'sql' | 'stow';
    status: 'ok' | 'failed';
    instances: number;
    failed: number;
    seconds: number | null;
    instancesPerSec: number | null;
    mbPerSec: number | null;
    /** SQL fill: VACUUM (ANALYZE) and CHECKPOINT after the rows were written. */
    settleSeconds?: number | null;
    error?: string;
  };
  patientId?: Lat & { emptyResults: number };
  patientName?: Lat & { emptyResults: number };
  /** Series metadata of the 500-instance series stored by STOW-RS, at this index size. */
  seriesMetadata500?: Lat;
  /** The STOW phase again, full-size instances into the index of this size, beside the empty-archive figure. */
  stow?: { status: 'ok' | 'failed'; instances: number; failed: number; instancesPerSec: number | null; mbPerSec: number | null; pctOfEmpty: number | null };
}
const qido: SizeResult[] = [];
/** QIDO latency loop that also counts 200 replies without any matching study. */
async function qidoLoop(url: (i: number) => string): Promise<Lat & { emptyResults: number }> {
  let empty = 0;
  const r = await latency(50, 30_000, async (i) => {
    const rep = await getJson(url(i));
    if (rep.status === 200 && (!Array.isArray(rep.json) || rep.json.length === 0)) empty++;
    return rep;
  });
  return { ...lat(r), emptyResults: empty };
}
const emptyStowRate = st.failed ? null : st.instances / (st.ms / 1000);
let nextGenerated = 0;
for (const size of sizes) {
  if (fillMode === 'stow' && size > stowFillMax) {
    log(`size ${size} skipped: a STOW fill stops at --stow-fill-max ${stowFillMax}`);
    qido.push({ targetInstances: size, storedByThisRun: stored, skipped: `STOW fill stops at --stow-fill-max ${stowFillMax}` });
    continue;
  }
  // At least one study of the fill's own patients, so there is a patient to search for even when the
  // earlier phases (STOW, import, C-STORE) already stored more instances than this size. An SQL fill
  // clones that study (real rows, real blobs), and the 500-instance series, for the rest.
  const first = patients.length ? 0 : 20;
  const need = Math.max(first, size - stored);
  let fill: NonNullable<SizeResult['fill']>;
  if (fillMode === 'stow') {
    log(`fill to ${size} instances (+${need} of ${FILL_ROWS}x${FILL_ROWS}, ${fillBatch}/request)`);
    const f = await stowAll(batches({ next: () => fillStudies.next() }, fillBatch, FILL_ROWS, need), Math.max(0, fillDeadline - Date.now()), false);
    stored += f.instances;
    if (f.firstError) log(`fill error: ${f.firstError}`);
    fill = {
      mode: 'stow',
      status: f.failed || stored < size ? 'failed' : 'ok',
      instances: f.instances,
      failed: f.failed,
      seconds: round(f.ms / 1000),
      instancesPerSec: round(f.instances / (f.ms / 1000), 1),
      mbPerSec: mbps(f.bytes, f.ms),
    };
  } else {
    const t = first ? await stowAll(batches({ next: () => fillStudies.next() }, fillBatch, FILL_ROWS, first), 120_000, false) : undefined;
    if (t) stored += t.instances;
    const rest = size - stored;
    fill = {
      mode: 'sql',
      status: 'ok',
      instances: t?.instances ?? 0,
      failed: t?.failed ?? 0,
      seconds: null,
      instancesPerSec: null,
      mbPerSec: null,
      settleSeconds: null,
    };
    if (t?.failed) {
      fill.status = 'failed';
      fill.error = `the template study was not stored: ${t.firstError}`;
    } else if (rest > 0) {
      log(`fill to ${size} instances: +${rest} generated in PostgreSQL from the stored studies (bench/fill.ts)`);
      const templates: Template[] = [];
      // About one study in a thousand is a copy of the 500-instance series, the rest of the 2 x 10 study.
      if (big.instances === BIG_SERIES && !big.failed) templates.push({ studyUid: bigStudy.uid, every: 1000, slot: 999 });
      templates.push({ studyUid: fillStudyUids[0], every: 1, slot: 0 });
      try {
        const r = await sqlFill(dbUrl!, templates, rest, nextGenerated, log);
        nextGenerated = r.nextStudy;
        stored += r.instances;
        patients.push(...r.patients);
        for (const n of r.surnames) surnames.add(n);
        fill.instances += r.instances;
        fill.seconds = round(r.insertSeconds);
        fill.instancesPerSec = round(r.instances / r.insertSeconds, 1);
        fill.settleSeconds = round(r.settleSeconds);
      } catch (e) {
        fill.status = 'failed';
        fill.error = String((e as Error).message ?? e);
        log(`sql fill failed: ${fill.error}`);
      }
    }
  }
  if (!patients.length) break;
  log(`QIDO and series metadata (500) at ${stored} instances`);
  const pick = (i: number): string => patients[(i * 7919) % patients.length];
  const patientId = await qidoLoop((i) => `${base}/studies?PatientID=${encodeURIComponent(pick(i))}`);
  const prefixes = [...surnames];
  const patientName = await qidoLoop((i) => `${base}/studies?PatientName=${encodeURIComponent(prefixes[i % prefixes.length] + '*')}`);
  const seriesMetadata500 = lat(await latency(10, 60_000, () => get(`${seriesUrl(bigRef)}/metadata`, 'application/dicom+json')));
  const atSize = stored;
  log(`STOW with ${stored} instances indexed: ${stowN} instances of ${ROWS}x${ROWS}, as the empty-archive phase`);
  const s = await stowPhase();
  stored += s.instances;
  const rate = s.instances / (s.ms / 1000);
  qido.push({
    targetInstances: size,
    storedByThisRun: atSize,
    fill,
    patientId,
    patientName,
    seriesMetadata500,
    stow: {
      status: s.failed || !s.instances ? 'failed' : 'ok',
      instances: s.instances,
      failed: s.failed,
      instancesPerSec: round(rate, 1),
      mbPerSec: mbps(s.bytes, s.ms),
      pctOfEmpty: emptyStowRate ? round((100 * rate) / emptyStowRate, 1) : null,
    },
  });
}

// 4. Memory phases: one ~1 GB STOW-RS request, one ~500 MB instance, then its frame 1000.
let memory: MemoryResult | undefined;
let memoryError: string | undefined;
if (!a['no-memory']) {
  try {
    memory = await memoryPhases(base, pid, Number(a['memory-request-mb']), Number(a['memory-instance-mb']), log);
  } catch (e) {
    memoryError = String((e as Error).message ?? e);
    log(`memory phases failed: ${memoryError}`);
  }
}

// 5. Report.
const peakRssMB = sampler?.stop() ?? null;
const yardMBps = medianMBps(yardIRounds);
const yardSMBps = medianMBps(yardSRounds);
const pctOf = (v: number | null, y: number | null): number | null => (v !== null && y ? round((100 * v) / y, 1) : null);
const wadoIMBps = medianMBps(wadoIRounds);
const wadoSMBps = medianMBps(wadoSRounds);
const wadoI = merged(wadoIRounds);
const wadoS = merged(wadoSRounds);
const result = {
  target: base,
  server: cairn ? 'cairn (spawned by bench)' : 'external',
  date: new Date().toISOString(),
  node: process.version,
  config: {
    concurrency: conc,
    stowInstances: stowN,
    instanceBytes,
    rows: ROWS,
    fillRows: FILL_ROWS,
    fillBatch,
    fill: fillMode,
    sizes,
    note: `throughput phases use ${ROWS}x${ROWS} 16-bit CT (~${(instanceBytes / 1e6).toFixed(2)} MB); index fill ${fillMode === 'sql' ? `generates rows in PostgreSQL from ${FILL_ROWS}x${FILL_ROWS} studies stored by STOW` : `stores ${FILL_ROWS}x${FILL_ROWS} instances by STOW`}`,
  },
  stow: {
    status: st.failed || !st.instances ? 'failed' : 'ok',
    instances: st.instances,
    failed: st.failed,
    seconds: round(st.ms / 1000),
    instancesPerSec: round(st.instances / (st.ms / 1000), 1),
    mbPerSec: mbps(st.bytes, st.ms),
    clientGenerationSeconds: round(stowGenMs / 1000),
    firstError: st.firstError,
  },
  import: imported ?? null,
  cstore: cstore ?? null,
  wado: {
    instanceStatus: status(wadoI),
    seriesStatus: status(wadoS),
    instanceMBps: wadoIMBps,
    instancePctOfYardstick: pctOf(wadoIMBps, yardMBps),
    instanceRequests: wadoI.count,
    instanceErrors: wadoI.errors,
    seriesMBps: wadoSMBps,
    seriesPctOfYardstick: pctOf(wadoSMBps, yardSMBps),
    seriesRequests: wadoS.count,
    seriesErrors: wadoS.errors,
    yardstickMBps: yardMBps,
    yardstickSeriesMBps: yardSMBps,
    firstError: wadoI.firstError ?? wadoS.firstError,
    rounds: {
      instanceMBps: roundMBps(wadoIRounds),
      yardstickMBps: roundMBps(yardIRounds),
      seriesMBps: roundMBps(wadoSRounds),
      yardstickSeriesMBps: roundMBps(yardSRounds),
    },
  },
  loopbackFloor: lat(floor),
  frame: lat(frames),
  qidoSeriesInstances50: lat(qidoSeries),
  seriesMetadata50: lat(meta50),
  seriesMetadata500: lat(meta500),
  render,
  transcode,
  qido,
  memory: memory ? { status: memOk(memory) ? 'ok' : 'failed', ...memory } : a['no-memory'] ? null : { status: 'failed', error: memoryError },
  peakRssMB,
  peakRssPhase: sampler?.peakPhase ?? null,
  rssPid: pid ?? null,
};
/** Each round's MB/s. */
function roundMBps(rs: LoopResult[]): (number | null)[] {
  return rs.map((x) => mbps(x.bytes, x.elapsedMs));
}
/** The median of the rounds' MB/s. */
function medianMBps(rs: LoopResult[]): number | null {
  const v = roundMBps(rs)
    .filter((x): x is number => x !== null)
    .sort((x, y) => x - y);
  return v.length ? v[Math.floor(v.length / 2)] : null;
}
/** The rounds as one result, for counts and errors. */
function merged(rs: LoopResult[]): LoopResult {
  return rs.reduce(
    (m, x) => ({
      count: m.count + x.count,
      errors: m.errors + x.errors,
      bytes: m.bytes + x.bytes,
      elapsedMs: m.elapsedMs + x.elapsedMs,
      latencies: [...m.latencies, ...x.latencies],
      firstError: m.firstError ?? x.firstError,
    }),
    { count: 0, errors: 0, bytes: 0, elapsedMs: 0, latencies: [] } as LoopResult,
  );
}
function memOk(m: MemoryResult): boolean {
  return m.request1GB.ok && m.instance500MB.ok && m.instance500MB.frame1000.ok;
}
const failed = (ok: boolean): string => (ok ? '' : 'FAILED  ');
const streamRow = (r: StreamResult): string =>
  `${failed(r.ok)}HTTP ${fmt(r.status)}  ${fmt(r.referenced)}/${r.sentInstances} referenced  ` +
  `${(r.bytes / 1e6).toFixed(0)} MB in ${fmt(r.seconds, ' s')} = ${fmt(r.mbPerSec, ' MB/s')}  peak RSS ${fmt(r.peakRssMB, ' MB')} ` +
  `(before ${fmt(r.baselineRssMB, ' MB')})${r.error ? '  ' + r.error.slice(0, 100) : ''}`;
const rows: Row[] = [
  ['Target', base],
  ['Data', result.config.note],
  [
    `STOW (${conc} clients x 10/request)`,
    `${failed(result.stow.status === 'ok')}${fmt(result.stow.instancesPerSec, ' inst/s')}  ${fmt(result.stow.mbPerSec, ' MB/s')}  (${st.instances} stored, ${st.failed} failed, built beforehand in ${fmt(result.stow.clientGenerationSeconds, ' s')})`,
  ],
  [
    `Import (npm run import, ${conc} workers)`,
    imported
      ? `${failed(imported.status === 'ok')}${fmt(imported.instancesPerSec, ' inst/s')}  ${fmt(imported.mbPerSec, ' MB/s')}  (${imported.instances} stored, ${imported.failed} failed, ${fmt(imported.wallSeconds, ' s')} with start-up)`
      : 'n/a (only against the Cairn the bench starts)',
  ],
  [
    `C-STORE (storescu, ${cstore?.associations ?? conc} associations)`,
    cstore
      ? `${failed(cstore.status === 'ok')}${fmt(cstore.instancesPerSec, ' inst/s')}  ${fmt(cstore.mbPerSec, ' MB/s')}  (${cstore.instances} stored, ${cstore.failed} failed, ${fmt(cstore.seconds, ' s')} with storescu start-up)`
      : 'n/a (needs storescu, and --dimse-port with --base)',
  ],
  [
    'WADO instance retrieve',
    `${failed(status(wadoI) === 'ok')}${fmt(wadoIMBps, ' MB/s')}  = ${fmt(result.wado.instancePctOfYardstick, '%')} of yardstick  (${wadoI.count} req in ${ROUNDS} rounds, ${wadoI.errors} errors)`,
  ],
  [
    'WADO series retrieve (50 inst)',
    `${failed(status(wadoS) === 'ok')}${fmt(wadoSMBps, ' MB/s')}  = ${fmt(result.wado.seriesPctOfYardstick, '%')} of yardstick  (${wadoS.count} req in ${ROUNDS} rounds, ${wadoS.errors} errors)`,
  ],
  [
    'Yardstick (node:http, same bytes)',
    `instance ${fmt(yardMBps, ' MB/s')}  series ${fmt(yardSMBps, ' MB/s')}  (medians of ${ROUNDS} rounds, taking turns with the server)`,
  ],
  ['Loopback floor (tiny reply, 2 processes)', fmtLat(result.loopbackFloor)],
  ['Frame retrieve frames/1', fmtLat(result.frame)],
  ['QIDO series instances (50)', fmtLat(result.qidoSeriesInstances50)],
  ['Series metadata (50)', fmtLat(result.seriesMetadata50)],
  ['Series metadata (500)', fmtLat(result.seriesMetadata500)],
  ['Rendered JPEG 512x512 16-bit', fmtLat(render.rendered)],
  ['Thumbnail cold / warm', `${fmtLat(render.thumbnailCold)} / ${fmtLat(render.thumbnailWarm)}`],
  [
    `QIDO (50) while ${conc} clients render`,
    `${fmtLat(render.qidoUnderRenderLoad)}  = p95 ${fmt(render.qidoP95PctOfIdle, '%')} of idle (${fmtLat(render.qidoIdle)}); ${fmt(render.renderLoad.perSec, ' renders/s')}`,
  ],
  [
    `Transcode J2K lossless -> Explicit VR LE (${conc} clients)`,
    transcode.status === 'n/a'
      ? `n/a (${transcode.reason?.slice(0, 120)})`
      : `${failed(transcode.status === 'ok')}${fmt(transcode.mbPerSec, ' MB/s')}  ${fmt(transcode.instancesPerSec, ' inst/s')}  (${transcode.correct}/${transcode.requests} correct in ${transcode.rounds.length} rounds of ${transcode.instances}, median; J2K ${fmt(transcode.j2kBytes && round(transcode.j2kBytes / 1e3, 0), ' kB')} each, built beforehand in ${fmt(transcode.buildSeconds, ' s')})${transcode.firstError ? '  ' + transcode.firstError.slice(0, 100) : ''}`,
  ],
];
for (const q of qido) {
  if (q.skipped || !q.fill || !q.patientId || !q.patientName) {
    rows.push([`Index ${q.targetInstances} instances`, `skipped: ${q.skipped ?? 'no patient to search for'}`]);
    continue;
  }
  const f = q.fill;
  const how =
    f.mode === 'sql'
      ? `fill +${f.instances}, generated in PostgreSQL in ${fmt(f.seconds, ' s')} (${fmt(f.instancesPerSec, ' inst/s')}) + vacuum/analyze/checkpoint ${fmt(f.settleSeconds ?? null, ' s')}`
      : `stored by this run; fill +${f.instances} by STOW at ${fmt(f.instancesPerSec, ' inst/s')}, ${f.failed} failed`;
  rows.push([`Index ${q.storedByThisRun} instances`, `${failed(f.status === 'ok')}(${how})${f.error ? '  ' + f.error.slice(0, 120) : ''}`]);
  rows.push(['  QIDO /studies?PatientID=', fmtLat(q.patientId) + (q.patientId.emptyResults ? `  EMPTY ${q.patientId.emptyResults}` : '')]);
  rows.push(['  QIDO /studies?PatientName=X*', fmtLat(q.patientName) + (q.patientName.emptyResults ? `  EMPTY ${q.patientName.emptyResults}` : '')]);
  if (q.seriesMetadata500) rows.push(['  Series metadata (500)', fmtLat(q.seriesMetadata500)]);
  if (q.stow)
    rows.push([
      `  STOW (${conc} clients x 10/request)`,
      `${failed(q.stow.status === 'ok')}${fmt(q.stow.instancesPerSec, ' inst/s')}  ${fmt(q.stow.mbPerSec, ' MB/s')}  = ${fmt(q.stow.pctOfEmpty, '%')} of the empty-archive figure (${q.stow.instances} stored, ${q.stow.failed} failed)`,
    ]);
}
if (memory) {
  const m = memory;
  const f = m.instance500MB.frame1000;
  rows.push([`Memory: 1 STOW request ~${m.request1GB.requestMB} MiB`, streamRow(m.request1GB)]);
  rows.push([`Memory: 1 instance ${m.instance500MB.frames} frames`, streamRow(m.instance500MB)]);
  rows.push([
    `  frames/1000 of it`,
    `${failed(f.ok)}first ${fmt(f.firstMs, ' ms')}  p50 ${fmt(f.p50Ms, ' ms')} (n=${Math.max(0, f.n - 1)})  ` +
      `${(f.bytes / 1e3).toFixed(1)} kB, content ${f.ok ? 'matches' : 'WRONG'}${f.error ? '  ' + f.error.slice(0, 100) : ''}`,
  ]);
} else if (memoryError) rows.push(['Memory phases', `FAILED  ${memoryError.slice(0, 120)}`]);
rows.push(['Peak RSS', pid ? `${fmt(peakRssMB, ' MB')} (pid ${pid}, this process only; during "${sampler?.peakPhase}")` : 'n/a (pass --pid)']);
console.log(table(rows));
if (cairn && cairn.exitCode() !== undefined) {
  log(`Cairn EXITED during the run (code ${cairn.exitCode()}); the last of its output:\n${cairn.log().slice(-4000)}`);
}
const line = JSON.stringify(result);
console.log('BENCH_JSON ' + line);
if (a.out) writeFileSync(String(a.out), JSON.stringify(result, null, 2) + '\n');
closeAgent();
await cairn?.stop();
