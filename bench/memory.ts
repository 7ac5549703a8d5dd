/// <reference path="../server/types/dcmjs.d.ts" />
// Memory phases: one ~1 GB STOW-RS request of many ~0.5 MB instances, and one STOW-RS
// request holding a single ~500 MB multi-frame instance. Both bodies are generated lazily
// and streamed with Transfer-Encoding: chunked, honouring backpressure, while the server's
// RSS is sampled every 100 ms. Then frame 1000 of the big instance is fetched and checked.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import dcmjs from 'dcmjs';
import { assertLoopback, defaultHeaders, DICOM_MULTIPART, FRAME_ACCEPT, request } from './client.js';
import { makeInstance, newPatient, newStudy, uid } from './data.js';
import { pct, round, rssKiB, RssSampler } from './stats.js';

const { DicomDict, DicomMetaDictionary } = dcmjs.data;
const MiB = 1024 * 1024;
const MF_GRAY_BYTE_SC = '1.2.840.10008.5.1.4.1.1.7.2'; // Multi-frame Grayscale Byte SC Image Storage
const EXPLICIT_VR_LE = '1.2.840.10008.1.2.1';
const FRAME_SIDE = 512;
const FRAME_BYTES = FRAME_SIDE * FRAME_SIDE;
export const CHECK_FRAME = 1000;
/** Deterministic frame content: every byte of frame k (1-based) is k % 251. */
export const frameByte = (k: number): number => k % 251;

export interface StreamResult {
  ok: boolean;
  status: number | null;
  sentInstances: number;
  referenced: number | null;
  failedListed: number | null;
  bytes: number;
  seconds: number | null;
  mbPerSec: number | null;
  baselineRssMB: number | null;
  peakRssMB: number | null;
  error?: string;
}
export interface FrameCheck {
  ok: boolean;
  status: number | null;
  firstMs: number | null;
  p50Ms: number | null;
  n: number;
  bytes: number;
  error?: string;
}
export interface MemoryResult {
  request1GB: StreamResult & { requestMB: number };
  instance500MB: StreamResult & { instanceMB: number; frames: number; frame1000: FrameCheck };
}

/**
 * Streams one multipart/related STOW-RS request whose parts come from `parts` (each part is a
 * generator of chunks, pulled only when the socket accepts more). Samples `pid` RSS every 100 ms.
 */
async function streamStow(base: string, pid: number | undefined, parts: Iterable<Iterable<Uint8Array>>, timeoutMs: number): Promise<StreamResult> {
  const u = assertLoopback(`${base}/studies`);
  const boundary = 'cairnmem' + randomBytes(12).toString('hex');
  const head = Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`);
  const baseline = pid ? rssKiB(pid) : null;
  const sampler = pid ? new RssSampler(pid, 100).start() : undefined;
  const res: StreamResult = {
    ok: false,
    status: null,
    sentInstances: 0,
    referenced: null,
    failedListed: null,
    bytes: 0,
    seconds: null,
    mbPerSec: null,
    baselineRssMB: baseline === null ? null : round(baseline / 1024, 1),
    peakRssMB: null,
  };
  const t0 = performance.now();
  try {
    const body = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(
        {
          method: 'POST',
          host: u.hostname,
          port: u.port || 80,
          path: u.pathname,
          headers: {
            ...defaultHeaders(),
            'Content-Type': `${DICOM_MULTIPART}; boundary=${boundary}`,
            Accept: 'application/dicom+json',
            'Transfer-Encoding': 'chunked',
          },
        },
        (r) => {
          answered = true;
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          r.on('error', reject);
        },
      );
      let failed: Error | undefined;
      let answered = false;
      req.on('error', (e) => {
        failed = e;
        reject(e);
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
      const write = async (c: Uint8Array): Promise<void> => {
        res.bytes += c.byteLength;
        if (!req.write(c))
          await new Promise<void>((ok, ko) => {
            const done = (): void => {
              req.off('drain', done);
              req.off('close', done);
              failed ? ko(failed) : ok();
            };
            req.on('drain', done);
            req.on('close', done);
          });
        if (failed) throw failed;
      };
      void (async () => {
        for (const part of parts) {
          if (answered) break; // the server answered early (an error): stop generating
          await write(head);
          for (const c of part) {
            if (answered) break;
            await write(c);
          }
          if (answered) break;
          await write(Buffer.from('\r\n'));
          res.sentInstances++;
        }
        await write(Buffer.from(`--${boundary}--\r\n`));
        req.end();
      })().catch((e: unknown) => {
        req.destroy(e as Error);
        reject(e);
      });
    });
    const ms = performance.now() - t0;
    res.status = body.status;
    res.seconds = round(ms / 1000);
    res.mbPerSec = round(res.bytes / 1e6 / (ms / 1000));
    try {
      const j = JSON.parse(body.text || '{}') as Record<string, { Value?: unknown[] }>;
      res.referenced = j['00081199']?.Value?.length ?? 0;
      res.failedListed = j['00081198']?.Value?.length ?? 0;
    } catch {
      res.error = `reply is not JSON: ${body.text.slice(0, 200)}`;
    }
    res.ok = body.status === 200 && res.referenced === res.sentInstances;
    if (!res.ok) res.error ??= `HTTP ${body.status}, ${res.referenced} referenced of ${res.sentInstances} sent: ${body.text.slice(0, 200)}`;
  } catch (e) {
    res.seconds = round((performance.now() - t0) / 1000);
    res.error = String((e as Error).message ?? e);
  }
  res.peakRssMB = sampler?.stop() ?? null;
  return res;
}

/** (a) ~`mb` MiB of 512×512 16-bit CT instances (~0.53 MB each), generated one at a time. */
function* ctParts(mb: number): Generator<Uint8Array[]> {
  let sent = 0;
  const limit = mb * MiB;
  while (sent < limit) {
    const st = newStudy(newPatient(), [50, 50, 50, 50]);
    for (const se of st.series)
      for (let i = 0; i < se.instances && sent < limit; i++) {
        const f = makeInstance(st, se, i, FRAME_SIDE);
        sent += f.byteLength;
        yield [f];
      }
  }
}

export interface BigInstance {
  study: string;
  series: string;
  sop: string;
  frames: number;
  bytes: number;
}

/** (b) One native 8-bit MONOCHROME2 512×512 multi-frame instance; the pixel data is yielded frame by frame. */
function bigInstance(frames: number): { ref: BigInstance; chunks: () => Generator<Uint8Array> } {
  const st = newStudy(newPatient(), [1]);
  const sop = uid();
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: MF_GRAY_BYTE_SC,
    MediaStorageSOPInstanceUID: sop,
    TransferSyntaxUID: EXPLICIT_VR_LE,
    ImplementationClassUID: '2.25.295114810240919530152547327343385126761',
    ImplementationVersionName: 'CAIRN_BENCH',
  };
  const ds = {
    SpecificCharacterSet: 'ISO_IR 100',
    ImageType: ['DERIVED', 'SECONDARY'],
    SOPClassUID: MF_GRAY_BYTE_SC,
    SOPInstanceUID: sop,
    StudyDate: st.date,
    StudyTime: '093000',
    ContentDate: st.date,
    ContentTime: '093200',
    AccessionNumber: st.accession,
    Modality: 'OT',
    ConversionType: 'WSD',
    Manufacturer: 'CAIRN BENCH',
    ReferringPhysicianName: 'REF^DOCTOR',
    StudyDescription: 'BENCH BIG MULTIFRAME',
    SeriesDescription: 'MULTIFRAME 8-BIT',
    PatientName: st.patient.name,
    PatientID: st.patient.id,
    PatientBirthDate: st.patient.birthDate,
    PatientSex: st.patient.sex,
    StudyInstanceUID: st.uid,
    SeriesInstanceUID: st.series[0].uid,
    StudyID: '1',
    SeriesNumber: '1',
    InstanceNumber: '1',
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    NumberOfFrames: String(frames),
    FrameIncrementPointer: ['00181063'],
    FrameTime: '33.3',
    Rows: FRAME_SIDE,
    Columns: FRAME_SIDE,
    BitsAllocated: 8,
    BitsStored: 8,
    HighBit: 7,
    PixelRepresentation: 0,
  };
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(ds);
  const header = new Uint8Array(dict.write());
  const pixelBytes = frames * FRAME_BYTES;
  // Pixel Data (7FE0,0010), Explicit VR LE: tag, "OB", 2 reserved bytes, 32-bit exact length.
  const pdHead = Buffer.alloc(12);
  pdHead.writeUInt16LE(0x7fe0, 0);
  pdHead.writeUInt16LE(0x0010, 2);
  pdHead.write('OB', 4, 'latin1');
  pdHead.writeUInt32LE(pixelBytes, 8);
  return {
    ref: { study: st.uid, series: st.series[0].uid, sop, frames, bytes: header.byteLength + 12 + pixelBytes },
    chunks: function* () {
      yield header;
      yield pdHead;
      for (let k = 1; k <= frames; k++) yield Buffer.alloc(FRAME_BYTES, frameByte(k));
    },
  };
}

/** The first part of a multipart/related reply (or the whole body when it is not multipart). */
export function firstPart(body: Buffer, type: string): Buffer {
  const m = /boundary="?([^";]+)"?/i.exec(type);
  if (!/^multipart\//i.test(type) || !m) return body;
  const open = body.indexOf(`--${m[1]}`);
  const hdrEnd = body.indexOf('\r\n\r\n', open);
  const close = body.indexOf(`\r\n--${m[1]}`, hdrEnd + 4);
  return open < 0 || hdrEnd < 0 || close < 0 ? Buffer.alloc(0) : body.subarray(hdrEnd + 4, close);
}

async function checkFrame(base: string, b: BigInstance, frame: number): Promise<FrameCheck> {
  const url = `${base}/studies/${b.study}/series/${b.series}/instances/${b.sop}/frames/${frame}`;
  const out: FrameCheck = { ok: false, status: null, firstMs: null, p50Ms: null, n: 0, bytes: 0 };
  const times: number[] = [];
  try {
    for (let i = 0; i < 11; i++) {
      const r = await request('GET', url, { Accept: FRAME_ACCEPT }, undefined, true, 60_000);
      out.status = r.status;
      times.push(r.ms);
      out.n++;
      if (i === 0) {
        out.firstMs = round(r.ms);
        const px = firstPart(r.body ?? Buffer.alloc(0), r.type ?? '');
        out.bytes = px.byteLength;
        const want = frameByte(frame);
        const bad = px.findIndex((v) => v !== want);
        if (r.status !== 200) {
          out.error = `HTTP ${r.status} ${r.body?.toString('utf8').slice(0, 200) ?? ''}`;
          break;
        }
        if (px.byteLength !== FRAME_BYTES || bad >= 0) {
          out.error = `frame ${frame}: got ${px.byteLength} bytes (want ${FRAME_BYTES})` + (bad >= 0 ? `, byte ${bad} = ${px[bad]} (want ${want})` : '');
          break;
        }
        out.ok = true;
      }
    }
  } catch (e) {
    out.error = String((e as Error).message ?? e);
  }
  out.p50Ms = round(pct(times.slice(1), 50));
  return out;
}

/** Runs both memory phases against `base`, sampling the RSS of `pid` (when known). */
export async function memoryPhases(
  base: string,
  pid: number | undefined,
  requestMB: number,
  instanceMB: number,
  log: (m: string) => void,
): Promise<MemoryResult> {
  log(`memory (a): one chunked STOW-RS request of ~${requestMB} MiB of 512x512 16-bit CT instances`);
  const a = await streamStow(base, pid, ctParts(requestMB), 30 * 60_000);
  log(`memory (a): HTTP ${a.status}, ${a.referenced}/${a.sentInstances} referenced, peak RSS ${a.peakRssMB} MB${a.error ? ', ' + a.error : ''}`);
  const frames = Math.max(CHECK_FRAME, Math.round((instanceMB * MiB) / FRAME_BYTES));
  const big = bigInstance(frames);
  log(`memory (b): one STOW-RS request with a single ${frames}-frame 512x512 8-bit instance (${(big.ref.bytes / 1e6).toFixed(0)} MB)`);
  const b = await streamStow(base, pid, [big.chunks()], 30 * 60_000);
  log(`memory (b): HTTP ${b.status}, ${b.referenced}/${b.sentInstances} referenced, peak RSS ${b.peakRssMB} MB${b.error ? ', ' + b.error : ''}`);
  const frame1000: FrameCheck = b.ok
    ? await checkFrame(base, big.ref, CHECK_FRAME)
    : { ok: false, status: null, firstMs: null, p50Ms: null, n: 0, bytes: 0, error: 'skipped: the big instance was not stored' };
  return { request1GB: { ...a, requestMB }, instance500MB: { ...b, instanceMB, frames, frame1000 } };
}
