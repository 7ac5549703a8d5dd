// The same flows through the third-party browser client `dicomweb-client`
// (interoperability with a real client, PS3.18 §10.4–10.6).
import dwc from 'dicomweb-client';
import { installXhr } from './xhr.js';
import { assert, first, sameSet, uidsOf, values, type Check, type Ctx } from './http.js';
import { bytesEqual } from './multipart.js';
import type { Instance } from './fixtures.js';

// The package's JSDoc-generated typings mark optional options as required; use a loose view.
interface Client {
  storeInstances(o: { datasets: ArrayBuffer[] }): Promise<unknown>;
  searchForStudies(o: { queryParams: Record<string, string> }): Promise<unknown>;
  searchForSeries(o: { studyInstanceUID: string }): Promise<unknown>;
  retrieveSeriesMetadata(o: { studyInstanceUID: string; seriesInstanceUID: string }): Promise<unknown>;
  retrieveInstance(o: { studyInstanceUID: string; seriesInstanceUID: string; sopInstanceUID: string }): Promise<unknown>;
  retrieveInstanceFrames(o: { studyInstanceUID: string; seriesInstanceUID: string; sopInstanceUID: string; frameNumbers: number[] }): Promise<unknown>;
}
const DICOMwebClient = dwc.api.DICOMwebClient as unknown as new (o: { url: string; verbose: boolean; headers?: Record<string, string> }) => Client;

function client(ctx: Ctx): Client {
  installXhr();
  return new DICOMwebClient({ url: ctx.base, verbose: false, headers: ctx.headers });
}

const ab = (i: Instance): ArrayBuffer => i.bytes.buffer.slice(i.bytes.byteOffset, i.bytes.byteOffset + i.bytes.byteLength) as ArrayBuffer;

/** Wrap client errors so the HTTP status shows in the check detail. */
async function call<T>(what: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    const err = e as { status?: number; message?: string };
    throw new Error(`${what} failed: ${err.status !== undefined ? `HTTP ${err.status}` : (err.message ?? String(e))}`);
  }
}

export const clientChecks: Check[] = [
  {
    name: 'client dicomweb-client storeInstances (STOW §10.5)',
    run: async (ctx) => {
      const d1 = ctx.syn.d1;
      const res = await call('storeInstances', client(ctx).storeInstances({ datasets: [ab(d1)] }));
      const json = typeof res === 'string' ? (res ? JSON.parse(res) : {}) : res;
      const refs = values(json, '00081199').map((it: any) => first(it, '00081155'));
      assert(refs.includes(d1.sop), `stored instance not in 00081199 (response ${JSON.stringify(json).slice(0, 120)})`);
      const found = await call('searchForStudies', client(ctx).searchForStudies({ queryParams: { StudyInstanceUID: d1.study } }));
      assert(Array.isArray(found) && found.length === 1, `study not found afterwards (${JSON.stringify(found)?.slice(0, 80)})`);
    },
  },
  {
    name: 'client dicomweb-client searchForStudies (QIDO §10.6)',
    run: async (ctx) => {
      const s = ctx.syn;
      const r = await call('searchForStudies', client(ctx).searchForStudies({ queryParams: { PatientID: s.patientId } }));
      sameSet(uidsOf(r as any[], '0020000D'), [s.studyA, s.studyB], 'studies');
    },
  },
  {
    name: 'client dicomweb-client searchForSeries (QIDO §10.6)',
    run: async (ctx) => {
      const s = ctx.syn;
      const r = await call('searchForSeries', client(ctx).searchForSeries({ studyInstanceUID: s.studyA }));
      sameSet(uidsOf(r as any[], '0020000E'), [s.seriesA1, s.seriesA2], 'series');
    },
  },
  {
    name: 'client dicomweb-client retrieveSeriesMetadata (WADO §10.4)',
    run: async (ctx) => {
      const s = ctx.syn;
      const r = await call('retrieveSeriesMetadata', client(ctx).retrieveSeriesMetadata({ studyInstanceUID: s.studyA, seriesInstanceUID: s.seriesA1 }));
      sameSet(uidsOf(r as any[], '00080018'), [s.a1.sop, s.a2.sop], 'instances in metadata');
    },
  },
  {
    name: 'client dicomweb-client retrieveInstance byte-identical (WADO §10.4)',
    run: async (ctx) => {
      const a1 = ctx.syn.a1;
      const r = await call(
        'retrieveInstance',
        client(ctx).retrieveInstance({
          studyInstanceUID: a1.study,
          seriesInstanceUID: a1.series,
          sopInstanceUID: a1.sop,
        }),
      );
      assert(r instanceof ArrayBuffer || ArrayBuffer.isView(r), 'no ArrayBuffer returned');
      const got = r instanceof ArrayBuffer ? new Uint8Array(r) : new Uint8Array((r as Uint8Array).buffer);
      assert(bytesEqual(got, a1.bytes), `${got.length} bytes, differs from the stored ${a1.bytes.length}`);
    },
  },
  {
    name: 'client dicomweb-client retrieveInstanceFrames frame 2 (WADO §10.4)',
    run: async (ctx) => {
      const b1 = ctx.syn.b1;
      const r = await call(
        'retrieveInstanceFrames',
        client(ctx).retrieveInstanceFrames({
          studyInstanceUID: b1.study,
          seriesInstanceUID: b1.series,
          sopInstanceUID: b1.sop,
          frameNumbers: [2],
        }),
      );
      assert(Array.isArray(r) && r.length === 1, `expected 1 frame, got ${Array.isArray(r) ? r.length : typeof r}`);
      const got = new Uint8Array(r[0] as ArrayBuffer);
      assert(bytesEqual(got, b1.frameData[1]!), `frame 2: ${got.length} bytes differ from ${b1.frameData[1]!.length}`);
    },
  },
];
