// STOW-RS checks (PS3.18 §10.5).
import type { Instance, SampleName } from './fixtures.js';
import { assert, dicomPart, DICOM_JSON, expectStatus, first, jsonArray, get, req, stow, stowResult, wadoPath, type Check, type Ctx, type Res } from './http.js';

/** Samples stored in the main batch (MR_small_implicit and SC_rgb_jpeg are exercised separately). */
export const BATCH: SampleName[] = [
  'CT_small.dcm',
  'MR_small.dcm',
  'JPEG-lossy.dcm',
  'JPEG2000.dcm',
  'SC_rgb_rle_2frame.dcm',
  'chrGerm.dcm',
  'chrJapMulti.dcm',
  'test-SR.dcm',
];

let batchRes: Res | undefined;

function expectRef(ok: Map<string, any>, i: Instance): void {
  const it = ok.get(i.sop);
  assert(it, `${i.name} (${i.sop}) missing from ReferencedSOPSequence (00081199)`);
  assert(first(it, '00081150') === i.sopClass, `${i.name}: 00081150 is ${first(it, '00081150')}, expected ${i.sopClass}`);
  const url = String(first(it, '00081190') ?? '');
  assert(url.endsWith(wadoPath(i)), `${i.name}: item 00081190 RetrieveURL "${url}" does not end with ${wadoPath(i)}`);
}

function failureFor(failed: any[], sop: string): any {
  return failed.find((f) => first(f, '00081155') === sop);
}

export const stowChecks: Check[] = [
  {
    name: 'setup: DELETE /studies/{uid} for sample studies (clean start)',
    run: async (ctx) => {
      if (!ctx.deleteSupported) return 'skipped (deleteSupported not set): duplicates must be accepted';
      const studies = new Set(Object.values(ctx.samples).map((s) => s.study));
      const codes: number[] = [];
      for (const s of studies) {
        const r = await req(ctx, 'DELETE', `/studies/${s}`);
        expectStatus(r, 200, 202, 204, 404);
        codes.push(r.status);
      }
      return `${studies.size} studies, statuses ${[...new Set(codes)].join('/')}`;
    },
  },
  {
    name: 'STOW §10.5 store sample files (multipart/related; type="application/dicom"; quoted boundary) → 200',
    run: async (ctx) => {
      batchRes = undefined;
      const r = await stow(
        ctx,
        '/studies',
        BATCH.map((n) => dicomPart(ctx.samples[n])),
        true,
      );
      expectStatus(r, 200);
      batchRes = r;
      const { ok } = stowResult(r);
      for (const n of BATCH) assert(ok.has(ctx.samples[n].sop), `${n} not in ReferencedSOPSequence (stored or already stored identically)`);
      return `${ok.size} referenced`;
    },
  },
  {
    name: 'STOW §10.5.3 response is application/dicom+json with 00081199 items (00081150, 00081155, 00081190)',
    run: async (ctx) => {
      assert(batchRes, 'no response from the sample store');
      const { ok } = stowResult(batchRes);
      for (const n of BATCH) expectRef(ok, ctx.samples[n]);
      return `${BATCH.length} items verified`;
    },
  },
  {
    name: 'STOW §10.5 unquoted boundary parameter; study RetrieveURL 00081190 → 200',
    run: async (ctx) => {
      const { a1, a3, studyA } = ctx.syn;
      const r = await stow(ctx, '/studies', [dicomPart(a1), dicomPart(a3)], false);
      expectStatus(r, 200);
      const { json, ok } = stowResult(r);
      expectRef(ok, a1);
      expectRef(ok, a3);
      const url = String(first(json, '00081190') ?? '');
      assert(url.endsWith(`/studies/${studyA}`), `top-level 00081190 RetrieveURL "${url}" should end with /studies/${studyA}`);
    },
  },
  {
    name: 'STOW §10.5 POST /studies/{uid}: instance of another study fails (FailedSOPSequence), good one stored → 202',
    run: async (ctx) => {
      const { a2, c1, studyA } = ctx.syn;
      const r = await stow(ctx, `/studies/${studyA}`, [dicomPart(a2), dicomPart(c1)]);
      expectStatus(r, 202);
      const { ok, failed } = stowResult(r);
      expectRef(ok, a2);
      assert(!ok.has(c1.sop), 'instance of another study is in ReferencedSOPSequence');
      const f = failureFor(failed, c1.sop);
      assert(f, '00081198 FailedSOPSequence has no item for the mismatching instance');
      assert(first(f, '00081197') !== undefined, 'failed item lacks 00081197 FailureReason');
      const q = jsonArray(await get(ctx, `/studies?StudyInstanceUID=${c1.study}`, DICOM_JSON));
      assert(q.length === 0, 'the mismatching instance was stored anyway (found by QIDO)');
      return `FailureReason ${first(f, '00081197')}`;
    },
  },
  {
    name: 'STOW §10.5.3 non-DICOM part alongside a good one → 202, 00081198 with 00081197, good one stored',
    run: async (ctx) => {
      const { b1 } = ctx.syn;
      const junk = new TextEncoder().encode('this is not a DICOM Part 10 file '.repeat(8));
      const r = await stow(ctx, '/studies', [dicomPart(b1), { body: junk, contentType: 'application/dicom' }]);
      expectStatus(r, 202);
      const { ok, failed } = stowResult(r);
      expectRef(ok, b1);
      assert(failed.length >= 1, 'no 00081198 FailedSOPSequence item for the non-DICOM part');
      for (const f of failed) assert(first(f, '00081197') !== undefined, 'failed item lacks 00081197 FailureReason');
      return `FailureReason ${failed.map((f) => first(f, '00081197')).join(',')}`;
    },
  },
  {
    name: 'STOW §10.5.1 unsupported Content-Type (application/json) → 415',
    run: async (ctx) => {
      const r = await req(ctx, 'POST', '/studies', {
        headers: { 'Content-Type': 'application/json', Accept: DICOM_JSON },
        body: new TextEncoder().encode('{}'),
      });
      expectStatus(r, 415);
    },
  },
  {
    name: 'STOW §10.5 identical duplicate (CT_small re-sent) → 200, listed in 00081199',
    run: async (ctx) => {
      const ct = ctx.samples['CT_small.dcm'];
      const r = await stow(ctx, '/studies', [dicomPart(ct)]);
      expectStatus(r, 200);
      expectRef(stowResult(r).ok, ct);
    },
  },
  {
    name: 'STOW §10.5 same SOP Instance UID with different bytes (MR_small_implicit) → stored or failed with reason',
    run: async (ctx) => dupOrFail(ctx, ctx.samples['MR_small_implicit.dcm']),
  },
  {
    name: 'STOW §10.5 SC_rgb_jpeg (implicit VR body under a JPEG Baseline label) → stored or failed with reason, no 5xx',
    run: async (ctx) => dupOrFail(ctx, ctx.samples['SC_rgb_jpeg.dcm']),
  },
];

async function dupOrFail(ctx: Ctx, i: Instance): Promise<string> {
  const r = await stow(ctx, '/studies', [dicomPart(i)]);
  expectStatus(r, 200, 202, 409);
  const { ok, failed } = stowResult(r);
  if (ok.has(i.sop)) {
    expectRef(ok, i);
    return `HTTP ${r.status}: accepted`;
  }
  assert(r.status !== 200, 'HTTP 200 but the instance is not in ReferencedSOPSequence');
  const f = failed[0];
  assert(f && first(f, '00081197') !== undefined, 'rejected without a 00081198 item carrying 00081197 FailureReason');
  return `HTTP ${r.status}: rejected, FailureReason ${first(f, '00081197')}`;
}
