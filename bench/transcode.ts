// Transcoding on retrieve: JPEG 2000 lossless instances stored as they are,
// retrieved as Explicit VR Little Endian (PS3.18 §8.7.3.5.2: the transfer-syntax
// parameter of the Accept header asks the origin server to transcode).
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { J2K_LOSSLESS } from '../server/dicom/transfer-syntax.js';
import { createPixelCodecs } from '../server/pixels/codecs.js';
import { closeAgent, DICOM_MULTIPART, loop, request, setDefaultHeaders, stow, type Reply } from './client.js';
import { EXPLICIT_VR_LE, makeInstance, newPatient, newStudy, uid, type InstanceRef } from './data.js';
import { mbps, round } from './stats.js';
import { startCairn } from './target.js';

export const TO_EXPLICIT_LE = `${DICOM_MULTIPART}; transfer-syntax=${EXPLICIT_VR_LE}`;

export interface TranscodeResult {
  /** 'n/a' when a server other than the bench's own Cairn cannot do it (`reason` says why). */
  status: 'ok' | 'failed' | 'n/a';
  reason?: string;
  instances: number;
  /** Mean size of the stored J2K lossless files, and of the pixel data decoded. */
  j2kBytes: number | null;
  decodedBytes: number;
  /** Time to build the J2K files in the bench process (Cairn's codec), before the clock. */
  buildSeconds: number | null;
  /** Median round: MB/s of the returned Explicit VR LE bytes, and instances/s. */
  mbPerSec: number | null;
  instancesPerSec: number | null;
  requests: number;
  correct: number;
  errors: number;
  firstError?: string;
  rounds: { mbPerSec: number | null; instancesPerSec: number | null; correct: number; errors: number }[];
}

/** What a retrieve answered: the transfer syntax of its one Part-10 part and that part's length. */
export interface PartCheck {
  transferSyntax: string | null;
  partBytes: number;
}

/** Reads the first part of a multipart/related body and the (0002,0010) Transfer Syntax UID of its Part-10 file meta group (PS3.10 §7.1). */
export function firstPart(body: Buffer, contentType: string): PartCheck | null {
  const m = /boundary="?([^";]+)"?/i.exec(contentType);
  if (!m) return null;
  const open = body.indexOf(`--${m[1]}`);
  if (open < 0) return null;
  const headEnd = body.indexOf('\r\n\r\n', open);
  if (headEnd < 0) return null;
  const start = headEnd + 4;
  const end = body.indexOf(`\r\n--${m[1]}`, start);
  if (end < 0) return null;
  const part = body.subarray(start, end);
  if (part.length < 132 || part.toString('latin1', 128, 132) !== 'DICM') return { transferSyntax: null, partBytes: part.length };
  // The meta group is always Explicit VR Little Endian; its OB/UN/SQ/UT/UC/UR elements have a 32-bit length.
  let p = 132;
  while (p + 8 <= part.length && part.readUInt16LE(p) === 0x0002) {
    const el = part.readUInt16LE(p + 2);
    const vr = part.toString('latin1', p + 4, p + 6);
    const long = ['OB', 'OW', 'OF', 'SQ', 'UT', 'UN', 'UC', 'UR'].includes(vr);
    const len = long ? part.readUInt32LE(p + 8) : part.readUInt16LE(p + 6);
    const at = p + (long ? 12 : 8);
    if (el === 0x0010) return { transferSyntax: part.toString('latin1', at, at + len).replace(/[\0 ]+$/, ''), partBytes: part.length };
    p = at + len;
  }
  return { transferSyntax: null, partBytes: part.length };
}

/** What an error reply says: the message of a JSON body (Cairn's `error`, Orthanc's `Details` or `Message`), else its text. */
function errorText(body: Buffer | undefined): string {
  const text = body?.toString('utf8') ?? '';
  try {
    const j = JSON.parse(text) as Record<string, unknown>;
    const said = [j.error, j.message, j.Message, j.Details].filter((v) => typeof v === 'string' && v);
    if (said.length) return [...new Set(said)].join(': ').slice(0, 200);
  } catch {
    /* not JSON */
  }
  return text.replace(/\s+/g, ' ').slice(0, 200);
}

/** A retrieve's reply as Explicit VR LE of about the decoded size, or why not. */
export function checkReply(r: Reply, decodedBytes: number): string | null {
  if (r.status !== 200) return `HTTP ${r.status} ${errorText(r.body)}`;
  const part = r.body ? firstPart(r.body, r.type ?? '') : null;
  if (!part) return `not a multipart/related reply (Content-Type ${r.type})`;
  if (part.transferSyntax === J2K_LOSSLESS) return `answered the stored JPEG 2000 bytes untranscoded (${part.partBytes} bytes)`;
  if (part.transferSyntax !== EXPLICIT_VR_LE) return `answered transfer syntax ${part.transferSyntax ?? 'unknown'}, not Explicit VR Little Endian`;
  // The pixel data plus a header of a few kB.
  if (part.partBytes < decodedBytes || part.partBytes > decodedBytes + 65_536)
    return `Explicit VR LE part of ${part.partBytes} bytes, expected about ${decodedBytes} (the decoded pixels) plus its header`;
  return null;
}

/**
 * Builds `n` J2K lossless instances of 512×512 16-bit CT (one series of a
 * study of their own) with Cairn's codec in the bench process, before the
 * clock starts, STOWs them, then times `rounds` rounds of `n` retrieves
 * each as Explicit VR LE with `conc` clients. Only complete, correct replies
 * count. `external`: the server is not the Cairn the bench started, so a
 * server that cannot transcode is n/a rather than failed.
 */
export async function transcodePhase(
  base: string,
  n: number,
  rows: number,
  conc: number,
  external: boolean,
  log: (m: string) => void,
  rounds = 3,
): Promise<TranscodeResult> {
  const decodedBytes = rows * rows * 2;
  const res: TranscodeResult = {
    status: 'failed',
    instances: 0,
    j2kBytes: null,
    decodedBytes,
    buildSeconds: null,
    mbPerSec: null,
    instancesPerSec: null,
    requests: 0,
    correct: 0,
    errors: 0,
    rounds: [],
  };
  log(
    `transcode: ${n} JPEG 2000 lossless instances of ${rows}x${rows} 16-bit built with Cairn's codec, stored, then retrieved as Explicit VR LE by ${conc} clients`,
  );
  const study = newStudy(newPatient(), [n]);
  const se = study.series[0];
  const px = createPixelCodecs({ workers: 2, inlineTranscodeBytes: 0 });
  const files: Buffer[] = [];
  const sops: string[] = [];
  const refs: InstanceRef[] = [];
  const t0 = performance.now();
  try {
    for (let i = 0; i < n; i += 8) {
      const built = await Promise.all(
        Array.from({ length: Math.min(8, n - i) }, async (_, k) => {
          const sop = uid();
          sops[i + k] = sop;
          const f = makeInstance(study, se, i + k, rows, sop);
          return px.transcode(Buffer.from(f.buffer, f.byteOffset, f.byteLength), J2K_LOSSLESS);
        }),
      );
      files.push(...built);
    }
  } catch (e) {
    res.firstError = `building the J2K files: ${(e as Error).message ?? e}`;
    return res;
  } finally {
    await px.close();
  }
  res.buildSeconds = round((performance.now() - t0) / 1000);
  res.j2kBytes = Math.round(files.reduce((s, f) => s + f.length, 0) / files.length);
  for (let i = 0; i < files.length; i += 10) {
    const batch = files.slice(i, i + 10);
    const r = await stow(base, batch);
    let failed = r.status < 200 || r.status >= 300;
    try {
      failed ||= Boolean((JSON.parse(r.body?.toString('utf8') || '{}') as Record<string, { Value?: unknown[] }>)['00081198']?.Value?.length);
    } catch {
      /* not JSON: the status decides */
    }
    if (failed) {
      res.firstError = `STOW of the J2K instances: HTTP ${r.status} ${r.body?.toString('utf8').slice(0, 200) ?? ''}`;
      return res;
    }
    for (const sop of sops.slice(i, i + 10)) refs.push({ study: study.uid, series: se.uid, sop });
  }
  res.instances = refs.length;
  const url = (r: InstanceRef): string => `${base}/studies/${r.study}/series/${r.series}/instances/${r.sop}`;
  const get = (r: InstanceRef): Promise<Reply> => request('GET', url(r), { Accept: TO_EXPLICIT_LE }, undefined, true);
  // Untimed probe and warm-up: a server that cannot transcode says so on the first request.
  const probe = checkReply(await get(refs[0]), decodedBytes);
  if (probe) {
    res.firstError = probe;
    if (external) {
      res.status = 'n/a';
      res.reason = probe;
    }
    return res;
  }
  for (let i = 1; i < Math.min(conc * 2, refs.length); i++) await get(refs[i]);
  for (let k = 0; k < rounds; k++) {
    let correct = 0;
    let okBytes = 0;
    const l = await loop(conc, refs.length, 60_000, async (i) => {
      const r = await get(refs[i]);
      const bad = checkReply(r, decodedBytes);
      if (bad) res.firstError ??= bad;
      else {
        correct++;
        okBytes += r.bytes;
      }
      return { ...r, body: bad ? r.body : undefined, status: bad ? 500 : 200 };
    });
    res.requests += l.count;
    res.errors += l.errors;
    res.correct += correct;
    res.firstError ??= l.firstError;
    res.rounds.push({ mbPerSec: mbps(okBytes, l.elapsedMs), instancesPerSec: round(correct / (l.elapsedMs / 1000), 1), correct, errors: l.errors });
  }
  const median = [...res.rounds].sort((x, y) => (x.mbPerSec ?? 0) - (y.mbPerSec ?? 0))[Math.floor(res.rounds.length / 2)];
  res.mbPerSec = median.mbPerSec;
  res.instancesPerSec = median.instancesPerSec;
  res.status = res.errors || !res.correct ? 'failed' : 'ok';
  return res;
}

/**
 * Only this figure, on its own: `npx tsx bench/transcode.ts [--base URL --token JWT]
 * [--instances 80] [--concurrency 4]`. Without --base it starts Cairn as the bench does.
 */
async function alone(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      base: { type: 'string' },
      token: { type: 'string' },
      instances: { type: 'string', default: '80' },
      concurrency: { type: 'string', default: '4' },
    },
  });
  const log = (m: string): void => void process.stderr.write(`[transcode ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
  const cairn = a.base ? undefined : await startCairn();
  const base = a.base ? String(a.base).replace(/\/+$/, '') : cairn!.base;
  if (a.token ?? cairn) setDefaultHeaders({ Authorization: `Bearer ${a.token ?? cairn!.token}` });
  try {
    const r = await transcodePhase(base, Number(a.instances), 512, Number(a.concurrency), !cairn, log);
    console.log(`TRANSCODE_JSON ${JSON.stringify({ load: loadavg(), ...r })}`);
  } finally {
    closeAgent();
    await cairn?.stop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await alone();
