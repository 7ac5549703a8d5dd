// WADO-RS checks (PS3.18 §10.4): instances, metadata, bulk data, frames, errors.
import { readPart10, type Instance } from './fixtures.js';
import { checkJapaneseName } from './checks-qido.js';
import {
  ACCEPT_DICOM,
  ACCEPT_OCTET,
  assert,
  DICOM_JSON,
  expectStatus,
  expectType,
  first,
  get,
  jsonArray,
  multipartOf,
  wadoPath,
  type Check,
  type Ctx,
} from './http.js';
import { bytesEqual, parseMediaType, parseMultipart } from './multipart.js';

/** Retrieve with Accept and assert the parts are byte-identical to `expected` (any order). */
async function retrieveIdentical(ctx: Ctx, path: string, expected: Instance[], accept = ACCEPT_DICOM): Promise<string> {
  const r = await get(ctx, path, accept);
  expectStatus(r, 200);
  const parts = multipartOf(r, 'application/dicom');
  assert(parts.length === expected.length, `${parts.length} parts, expected ${expected.length}`);
  const left = [...expected];
  for (const p of parts) {
    const k = left.findIndex((e) => bytesEqual(e.bytes, p.body));
    assert(k >= 0, `a part (${p.body.length} bytes) matches none of the stored files (${left.map((e) => `${e.name}:${e.bytes.length}`).join(', ')})`);
    left.splice(k, 1);
  }
  return `${parts.length} part(s) byte-identical`;
}

/** Encapsulated fragments are padded to even length; allow one trailing pad byte either way. */
function sameFrame(got: Uint8Array, want: Uint8Array): boolean {
  if (bytesEqual(got, want)) return true;
  const trim = (a: Uint8Array) => (a.length && a[a.length - 1] === 0 ? a.subarray(0, a.length - 1) : a);
  return bytesEqual(trim(got), trim(want));
}

async function frames(ctx: Ctx, i: Instance, list: number[], accept: string, partType: string): Promise<string> {
  const r = await get(ctx, `${wadoPath(i)}/frames/${list.join(',')}`, accept);
  expectStatus(r, 200);
  const parts = multipartOf(r, partType);
  assert(parts.length === list.length, `${parts.length} parts for frames ${list}`);
  list.forEach((n, k) => {
    const want = i.frameData[n - 1]!;
    assert(sameFrame(parts[k]!.body, want), `frame ${n}: ${parts[k]!.body.length} bytes differ from the stored ${want.length} bytes`);
  });
  return `${parts.length} frame(s), ${parts.map((p) => p.body.length).join('+')} bytes`;
}

const unknownUid = () => `2.25.${Date.now()}${Math.floor(Math.random() * 1e9)}`;

export const wadoChecks: Check[] = [
  {
    name: 'WADO §10.4.1 retrieve instance: multipart/related application/dicom, byte-identical',
    run: (ctx) => retrieveIdentical(ctx, wadoPath(ctx.syn.a1), [ctx.syn.a1]),
  },
  {
    name: 'WADO §10.4.1 retrieve series: all instances byte-identical',
    run: (ctx) => retrieveIdentical(ctx, `/studies/${ctx.syn.studyA}/series/${ctx.syn.seriesA1}`, [ctx.syn.a1, ctx.syn.a2]),
  },
  {
    name: 'WADO §10.4.1 retrieve study: all instances byte-identical',
    run: (ctx) => retrieveIdentical(ctx, `/studies/${ctx.syn.studyA}`, [ctx.syn.a1, ctx.syn.a2, ctx.syn.a3]),
  },
  {
    name: 'WADO §8.7.3.5 Accept transfer-syntax=* returns stored JPEG/RLE/JPEG 2000 files as-is',
    run: async (ctx) => {
      const s = ctx.samples,
        acc = `${ACCEPT_DICOM}; transfer-syntax=*`;
      await retrieveIdentical(ctx, wadoPath(s['JPEG-lossy.dcm']), [s['JPEG-lossy.dcm']], acc);
      await retrieveIdentical(ctx, wadoPath(s['SC_rgb_rle_2frame.dcm']), [s['SC_rgb_rle_2frame.dcm']], acc);
      return retrieveIdentical(ctx, `/studies/${s['JPEG2000.dcm'].study}`, [s['JPEG-lossy.dcm'], s['JPEG2000.dcm']], acc);
    },
  },
  {
    name: 'WADO §8.7.3 unsupported Accept (image/x-foo) → 406',
    run: async (ctx) => expectStatus(await get(ctx, wadoPath(ctx.syn.a1), 'image/x-foo'), 406),
  },
  {
    name: 'WADO §8.7.3.5 transfer syntax needing transcoding (JPEG-LS) → 406, or 200 in that syntax',
    run: async (ctx) => {
      const ls = '1.2.840.10008.1.2.4.80',
        ct = ctx.samples['CT_small.dcm'];
      const r = await get(ctx, wadoPath(ct), `${ACCEPT_DICOM}; transfer-syntax=${ls}`);
      expectStatus(r, 200, 406);
      if (r.status === 406) return '406 (no transcoding)';
      const [p] = multipartOf(r, 'application/dicom');
      assert(p, 'no part');
      const got = readPart10('response', p.body);
      assert(got.ts === ls, `200 but the part is in ${got.ts}, not ${ls}`);
      return '200 transcoded';
    },
  },
  {
    name: 'WADO §10.4.1 metadata study/series/instance: application/dicom+json with counts',
    run: async (ctx) => {
      const s = ctx.syn;
      const md = async (path: string, n: number) => {
        const items = jsonArray(await get(ctx, `${path}/metadata`, DICOM_JSON));
        assert(items.length === n, `${path}/metadata: ${items.length} items, expected ${n}`);
        for (const it of items) assert(first(it, '0020000D') === s.studyA, `${path}/metadata: item without 0020000D of the study`);
        return items;
      };
      await md(`/studies/${s.studyA}`, 3);
      await md(`/studies/${s.studyA}/series/${s.seriesA1}`, 2);
      const [it] = await md(wadoPath(s.a3), 1);
      assert(first(it, '00080018') === s.a3.sop, 'instance metadata 00080018 mismatch');
      assert(first(it, '00080060') === 'CT', 'instance metadata 00080060 mismatch');
    },
  },
  {
    name: 'WADO §10.4.1.1 metadata: PixelData 7FE00010 as BulkDataURI; BulkDataURI retrieves the exact bytes',
    run: async (ctx) => {
      const b1 = ctx.syn.b1;
      const [it] = jsonArray(await get(ctx, `${wadoPath(b1)}/metadata`, DICOM_JSON));
      const px = it?.['7FE00010'];
      assert(px && typeof px.BulkDataURI === 'string', `7FE00010 is ${JSON.stringify(px)?.slice(0, 80)}, expected a BulkDataURI`);
      assert(px.InlineBinary === undefined, '7FE00010 has both InlineBinary and BulkDataURI');
      const uri = new URL(px.BulkDataURI, ctx.base + '/').toString();
      const r = await get(ctx, uri, ACCEPT_OCTET);
      expectStatus(r, 200);
      const [p] = multipartOf(r, 'application/octet-stream');
      assert(p && bytesEqual(p.body, b1.pixelData!), `bulk data ${p?.body.length} bytes differ from the stored ${b1.pixelData!.length}`);
      ctx.bulkUri = uri;
      return uri.replace(ctx.base, '');
    },
  },
  {
    name: 'WADO §8.3.5 BulkDataURI with Range: bytes=0-99 → 206 with the first 100 bytes',
    run: async (ctx) => {
      assert(ctx.bulkUri, 'no BulkDataURI from the previous check');
      const want = ctx.syn.b1.pixelData!.subarray(0, 100);
      const r = await get(ctx, ctx.bulkUri, `${ACCEPT_OCTET}, application/octet-stream`, { Range: 'bytes=0-99' });
      expectStatus(r, 206);
      const mt = parseMediaType(r.contentType).type;
      const body = mt === 'multipart/related' ? parseMultipart(r.bytes, r.contentType)[0]?.body : r.bytes;
      assert(body && bytesEqual(body, want), `206 body (${body?.length} bytes) is not the first 100 bytes`);
      return `Content-Type ${mt}`;
    },
  },
  {
    name: 'WADO §10.4.1 frames: native frame 2 as application/octet-stream, exact bytes',
    run: (ctx) => frames(ctx, ctx.syn.b1, [2], ACCEPT_OCTET, 'application/octet-stream'),
  },
  {
    name: 'WADO §10.4.1 frames: frame list 1,3 in order',
    run: (ctx) => frames(ctx, ctx.syn.b1, [1, 3], ACCEPT_OCTET, 'application/octet-stream'),
  },
  {
    name: 'WADO §8.7.4 frames: encapsulated JPEG (image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.51)',
    run: (ctx) => frames(ctx, ctx.samples['JPEG-lossy.dcm'], [1], 'multipart/related; type="image/jpeg"; transfer-syntax=1.2.840.10008.1.2.4.51', 'image/jpeg'),
  },
  {
    name: 'WADO §8.7.4 frames: RLE multi-frame, frame 2 (image/dicom-rle)',
    run: (ctx) =>
      frames(
        ctx,
        ctx.samples['SC_rgb_rle_2frame.dcm'],
        [2],
        'multipart/related; type="image/dicom-rle"; transfer-syntax=1.2.840.10008.1.2.5',
        'image/dicom-rle',
      ),
  },
  {
    name: 'WADO §10.4 unknown Study Instance UID → 404 (retrieve and metadata)',
    run: async (ctx) => {
      expectStatus(await get(ctx, `/studies/${unknownUid()}`, ACCEPT_DICOM), 404);
      expectStatus(await get(ctx, `/studies/${unknownUid()}/metadata`, DICOM_JSON), 404);
    },
  },
  {
    name: 'WADO §10.4 malformed UID (abc) → 400 (retrieve and metadata)',
    run: async (ctx) => {
      expectStatus(await get(ctx, '/studies/abc', ACCEPT_DICOM), 400);
      expectStatus(await get(ctx, '/studies/abc/metadata', DICOM_JSON), 400);
    },
  },
  {
    name: 'WADO §10.4.1 metadata: ISO 2022 IR 87 Japanese PatientName decoded (chrJapMulti)',
    run: async (ctx) => {
      const j = ctx.samples['chrJapMulti.dcm'];
      const [it] = jsonArray(await get(ctx, `${wadoPath(j)}/metadata`, DICOM_JSON));
      checkJapaneseName(it, 'metadata');
    },
  },
  {
    name: 'WADO §10.4.1 metadata: SR ContentSequence 0040A730 present as nested JSON',
    run: async (ctx) => {
      const r = await get(ctx, `${wadoPath(ctx.samples['test-SR.dcm'])}/metadata`, DICOM_JSON);
      expectType(r, DICOM_JSON);
      const [it] = jsonArray(r);
      const seq = it?.['0040A730'];
      assert(seq?.vr === 'SQ' && Array.isArray(seq.Value) && seq.Value.length > 0, '0040A730 missing or not a non-empty SQ');
      return `${seq.Value.length} content items`;
    },
  },
];
