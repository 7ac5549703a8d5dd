// `npm run bench -- --orthanc [options]`: the same bench against a fresh Cairn
// and then a fresh Orthanc, on the same machine in the same run, each STOWing
// into an empty archive first, and one table of both with Cairn ÷ Orthanc.
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { storescuInstalled, writeCStoreFiles } from './cstore.js';
import { ORTHANC_AE, orthancInstalled, startOrthanc } from './orthanc.js';
import { table, type Row } from './stats.js';

// biome-ignore lint/suspicious/noExplicitAny: the BENCH_JSON of either server, read field by field with optional chaining
type Json = Record<string, any>;

const RUN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'run.ts');

/** Runs bench/run.ts with `args` and returns its BENCH_JSON, passing its table and progress through. */
function runBench(args: string[]): Promise<Json> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', RUN, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      process.stdout.write(c);
    });
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('BENCH_JSON '));
      if (!line) reject(new Error(`bench exited ${code} without a result`));
      else resolve(JSON.parse(line.slice('BENCH_JSON '.length)) as Json);
    });
  });
}

/** The options to pass on, without --orthanc, --out, --base, --pid, --token and the C-STORE target's. */
function passOn(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--orthanc') continue;
    if (['--out', '--base', '--pid', '--token', '--dimse-port', '--dimse-ae', '--cstore-dir'].includes(a)) {
      i++;
      continue;
    }
    if (/^--(out|base|pid|token|dimse-port|dimse-ae|cstore-dir)=/.test(a)) continue;
    out.push(a);
  }
  return out;
}

/** The value of `--name N` or `--name=N` in argv, else `fallback`. */
function option(argv: string[], name: string, fallback: number): number {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}`) return Number(argv[i + 1]);
    if (argv[i].startsWith(`--${name}=`)) return Number(argv[i].slice(name.length + 3));
  }
  return fallback;
}

export async function compareWithOrthanc(argv: string[], outFile?: string): Promise<void> {
  if (!orthancInstalled()) {
    process.stderr.write('Orthanc is not installed: apt-get install orthanc orthanc-dicomweb (Debian), then run again\n');
    process.exit(2);
  }
  const args = passOn(argv);
  // The C-STORE phase sends the very same files to both: written once here, before either run.
  const cstore = !args.includes('--no-cstore') && storescuInstalled();
  const files = cstore ? writeCStoreFiles(Math.max(50, option(argv, 'stow-instances', 400)), 512, 50, Math.max(1, option(argv, 'concurrency', 4))) : undefined;
  const withFiles = files ? ['--cstore-dir', files] : [];
  let cairn: Json;
  let other: Json;
  try {
    process.stderr.write('[bench] Cairn, fresh, on an empty archive\n');
    cairn = await runBench([...args, ...withFiles]);
    process.stderr.write('[bench] Orthanc, fresh, on an empty archive\n');
    const orthanc = await startOrthanc();
    try {
      // Orthanc keeps no data folder of its own under the bench, and the memory phases
      // measure Cairn's streaming limits: they are Cairn's alone.
      other = await runBench([
        ...args.filter((a) => a !== '--no-memory'),
        '--no-memory',
        '--base',
        orthanc.base,
        '--pid',
        String(orthanc.pid),
        ...(files ? ['--dimse-port', String(orthanc.dimsePort), '--dimse-ae', ORTHANC_AE, ...withFiles] : []),
      ]);
    } finally {
      await orthanc.stop();
    }
  } finally {
    if (files) rmSync(files, { recursive: true, force: true });
  }
  const figures: [string, (j: Json) => number | null | undefined, 'higher' | 'lower'][] = [
    ['STOW inst/s', (j) => j.stow?.instancesPerSec, 'higher'],
    ['C-STORE inst/s (storescu)', (j) => j.cstore?.instancesPerSec, 'higher'],
    ['WADO instance MB/s', (j) => j.wado?.instanceMBps, 'higher'],
    ['WADO series MB/s', (j) => j.wado?.seriesMBps, 'higher'],
    ['Transcode J2K lossless -> Explicit VR LE MB/s', (j) => j.transcode?.mbPerSec, 'higher'],
    ['Frame p50 ms', (j) => j.frame?.p50, 'lower'],
    ['QIDO series instances (50) p95 ms', (j) => j.qidoSeriesInstances50?.p95, 'lower'],
    ['Series metadata (50) p95 ms', (j) => j.seriesMetadata50?.p95, 'lower'],
    ['Series metadata (500) p95 ms', (j) => j.seriesMetadata500?.p95, 'lower'],
    // By index size: a size one server skipped (Orthanc's STOW fill stops at --stow-fill-max) is n/a there.
    ...(cairn.qido as Json[]).flatMap((q): [string, (j: Json) => number | null | undefined, 'higher' | 'lower'][] => {
      const at = (j: Json): Json | undefined => (j.qido as Json[] | undefined)?.find((x) => x.targetInstances === q.targetInstances);
      return [
        [`QIDO PatientID p95 ms at ${q.targetInstances}`, (j) => at(j)?.patientId?.p95, 'lower'],
        [`QIDO PatientName p95 ms at ${q.targetInstances}`, (j) => at(j)?.patientName?.p95, 'lower'],
        [`Series metadata (500) p95 ms at ${q.targetInstances}`, (j) => at(j)?.seriesMetadata500?.p95, 'lower'],
        [`STOW inst/s at ${q.targetInstances}`, (j) => at(j)?.stow?.instancesPerSec, 'higher'],
      ];
    }),
    ['Peak RSS MB', (j) => j.peakRssMB, 'lower'],
  ];
  const rows: Row[] = [['figure', 'Cairn | Orthanc | Cairn ÷ Orthanc (> 1 is better for Cairn on throughput, < 1 on latency)']];
  const comparison: Json = {};
  for (const [name, get, better] of figures) {
    const c = get(cairn);
    const o = get(other);
    const ratio = typeof c === 'number' && typeof o === 'number' && o > 0 ? Math.round((c / o) * 100) / 100 : null;
    comparison[name] = { cairn: c ?? null, orthanc: o ?? null, ratio, better };
    // A figure the server cannot give (Orthanc without a JPEG 2000 decoder) is n/a with the reason.
    const why = (j: Json): string => (name.startsWith('Transcode') && j.transcode?.reason ? ` (${String(j.transcode.reason).slice(0, 80)})` : '');
    if (why(other)) comparison[name].orthancReason = other.transcode.reason;
    rows.push([name, `${c ?? `n/a${why(cairn)}`} | ${o ?? `n/a${why(other)}`} | ${ratio ?? 'n/a'}`]);
  }
  console.log(table(rows));
  const result = { date: new Date().toISOString(), cairn, orthanc: other, comparison };
  console.log(`BENCH_COMPARE_JSON ${JSON.stringify(comparison)}`);
  if (outFile) writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);
}
