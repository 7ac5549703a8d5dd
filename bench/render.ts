// Rendered images and thumbnails (PS3.18 §10.4.1.1.3-4), and QIDO while rendering runs at full load.
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { closeAgent, latency, loop, request, setDefaultHeaders, stow, type Reply } from './client.js';
import { batches, newPatient, newStudy, type InstanceRef } from './data.js';
import { lat, round, type Lat } from './stats.js';
import { startCairn } from './target.js';

export interface RenderResult {
  rendered: Lat;
  thumbnailCold: Lat;
  thumbnailWarm: Lat;
  qidoIdle: Lat;
  qidoUnderRenderLoad: Lat;
  /** p95 under load over p95 idle, in percent (100 = unchanged). */
  qidoP95PctOfIdle: number | null;
  renderLoad: { requests: number; errors: number; perSec: number | null };
}

export async function renderPhases(base: string, refs: InstanceRef[], qidoUrl: string, conc: number, log: (m: string) => void): Promise<RenderResult> {
  const url = (r: InstanceRef): string => `${base}/studies/${r.study}/series/${r.series}/instances/${r.sop}`;
  const get = (u: string, accept: string): Promise<Reply> => request('GET', u, { Accept: accept });
  const ok = (s: number): boolean => s === 200;
  log('rendered JPEG of 512x512 16-bit CT instances');
  const rendered = await latency(50, 30_000, (i) => get(`${url(refs[i % refs.length])}/rendered`, 'image/jpeg'));
  log('thumbnails: cold (first request of each instance), then warm (the same again)');
  // Instances from the end of the list for warm-up, from the start for the cold figure: none is asked twice.
  const cold = Math.min(30, Math.max(1, refs.length - 3));
  for (let i = 1; i <= 3 && refs.length - i >= cold; i++) await get(`${url(refs[refs.length - i])}/thumbnail`, 'image/jpeg').catch(() => undefined);
  const thumbnailCold = await latency(cold, 30_000, (i) => get(`${url(refs[i])}/thumbnail`, 'image/jpeg'), 0);
  const thumbnailWarm = await latency(50, 20_000, (i) => get(`${url(refs[i % cold])}/thumbnail`, 'image/jpeg'), 0);
  log('QIDO idle, then QIDO while every client renders');
  const qidoIdle = await latency(50, 20_000, () => get(qidoUrl, 'application/dicom+json'));
  let stop = false;
  const load = loop(conc, Infinity, 120_000, async (i) => (stop ? null : get(`${url(refs[i % refs.length])}/rendered`, 'image/jpeg')), ok);
  await new Promise((r) => setTimeout(r, 1000));
  const qidoLoaded = await latency(50, 30_000, () => get(qidoUrl, 'application/dicom+json'), 0);
  stop = true;
  const l = await load;
  const idle = lat(qidoIdle);
  const loaded = lat(qidoLoaded);
  return {
    rendered: lat(rendered),
    thumbnailCold: lat(thumbnailCold),
    thumbnailWarm: lat(thumbnailWarm),
    qidoIdle: idle,
    qidoUnderRenderLoad: loaded,
    qidoP95PctOfIdle: idle.p95 && loaded.p95 !== null ? round((100 * loaded.p95) / idle.p95, 1) : null,
    renderLoad: { requests: l.count, errors: l.errors, perSec: round(l.count / (l.elapsedMs / 1000), 1) },
  };
}

/** CPU time (user + system, ms) of a process and of all its descendants (for Cairn: the embedded PostgreSQL), from /proc. */
export function cpuMs(pid: number): { self: number; children: number } {
  const tick = 1000 / 100; // USER_HZ is 100 on Linux.
  const stats = new Map<number, { ppid: number; ms: number }>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(d), { ppid: Number(f[1]), ms: (Number(f[11]) + Number(f[12])) * tick });
    } catch {
      /* gone */
    }
  }
  const self = stats.get(pid)?.ms ?? 0;
  const below = new Set([pid]);
  let children = 0;
  for (let grew = true; grew; ) {
    grew = false;
    for (const [p, s] of stats) {
      if (!below.has(p) && below.has(s.ppid)) {
        below.add(p);
        children += s.ms;
        grew = true;
      }
    }
  }
  return { self, children };
}

/**
 * Only the render figures, on their own: `npx tsx bench/render.ts [--base URL --token JWT --pid PID]
 * [--instances 60] [--concurrency 4] [--rounds 1]`. Without --base it starts Cairn as the bench does.
 * Stores one series of 512×512 16-bit CT, then per round: CPU of the server (and of its
 * PostgreSQL) per rendered JPEG over 100 sequential requests, and the render phases above.
 */
async function alone(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      base: { type: 'string' },
      token: { type: 'string' },
      pid: { type: 'string' },
      instances: { type: 'string', default: '60' },
      concurrency: { type: 'string', default: '4' },
      rounds: { type: 'string', default: '1' },
    },
  });
  const log = (m: string): void => void process.stderr.write(`[render ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
  const cairn = a.base ? undefined : await startCairn();
  const base = a.base ? String(a.base).replace(/\/+$/, '') : cairn!.base;
  const pid = a.pid ? Number(a.pid) : cairn?.pid;
  setDefaultHeaders({ Authorization: `Bearer ${a.token ?? cairn!.token}` });
  try {
    const n = Number(a.instances);
    const refs: InstanceRef[] = [];
    for (const b of batches([newStudy(newPatient(), [n])], 10, 512, n)) {
      const r = await stow(base, b.files);
      if (r.status !== 200) throw new Error(`STOW failed: HTTP ${r.status}`);
      refs.push(...b.refs);
    }
    const qido = `${base}/studies/${refs[0].study}/series/${refs[0].series}/instances`;
    const url = (r: InstanceRef): string => `${base}/studies/${r.study}/series/${r.series}/instances/${r.sop}/rendered`;
    for (let round = 1; round <= Number(a.rounds); round++) {
      for (let i = 0; i < 10; i++) await request('GET', url(refs[i % n]), { Accept: 'image/jpeg' });
      const before = pid ? cpuMs(pid) : undefined;
      const seq = await latency(100, 60_000, (i) => request('GET', url(refs[i % n]), { Accept: 'image/jpeg' }), 0);
      const after = pid ? cpuMs(pid) : undefined;
      const perRender =
        before && after
          ? { serverMs: round2((after.self - before.self) / seq.count), postgresMs: round2((after.children - before.children) / seq.count) }
          : undefined;
      const phases = await renderPhases(base, refs, qido, Number(a.concurrency), log);
      console.log(`RENDER_JSON ${JSON.stringify({ round, load: loadavg().map((x) => round2(x)), cpuPerRender: perRender, sequential: lat(seq), ...phases })}`);
    }
  } finally {
    closeAgent();
    await cairn?.stop();
  }
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await alone();
