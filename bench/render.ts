// Rendered images and thumbnails (PS3.18 §10.4.1.1.3-4), and QIDO while rendering runs at full load.
import { latency, loop, request, type Reply } from './client.js';
import type { InstanceRef } from './data.js';
import { lat, round, type Lat } from './stats.js';

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
