// WADO-URI checks (PS3.18 §9): one GET whose query names an instance. Run
// only when the suite is told where the server answers WADO-URI (the path
// differs between archives).
import { assert, expectStatus, expectType, req, type Check, type Ctx, type Res } from './http.js';
import type { Instance } from './fixtures.js';
import { bytesEqual } from './multipart.js';

function uri(ctx: Ctx, i: Pick<Instance, 'study' | 'series' | 'sop'>, extra = ''): string {
  return `${ctx.wadoUri}?requestType=WADO&studyUID=${i.study}&seriesUID=${i.series}&objectUID=${i.sop}${extra}`;
}

/** A WADO-URI check, passed with a note when the suite has no WADO-URI address. */
function check(name: string, run: (ctx: Ctx) => Promise<string | undefined>): Check {
  return { name, run: async (ctx) => (ctx.wadoUri ? run(ctx) : 'not run: no WADO-URI address given (--wado-uri)') };
}

const startsWith = (r: Res, bytes: number[]) => bytes.every((b, k) => r.bytes[k] === b);

export const wadoUriChecks: Check[] = [
  check('WADO-URI §9 contentType=application/dicom: an Explicit VR Little Endian instance byte-identical', async (ctx) => {
    const ct = ctx.samples['CT_small.dcm'];
    const r = await req(ctx, 'GET', uri(ctx, ct, '&contentType=application%2Fdicom'));
    expectStatus(r, 200);
    expectType(r, 'application/dicom');
    assert(bytesEqual(r.bytes, ct.bytes), `${r.bytes.length} bytes differ from the stored ${ct.bytes.length}`);
    return `${r.bytes.length} bytes`;
  }),
  check('WADO-URI §9 without contentType an image is image/jpeg', async (ctx) => {
    const r = await req(ctx, 'GET', uri(ctx, ctx.samples['CT_small.dcm']));
    expectStatus(r, 200);
    expectType(r, 'image/jpeg');
    assert(startsWith(r, [0xff, 0xd8, 0xff]), 'the body does not start with a JPEG SOI marker');
    return `${r.bytes.length} bytes of JPEG`;
  }),
  check('WADO-URI §9 contentType=image/png: a PNG, or 406 from a server that makes none', async (ctx) => {
    const r = await req(ctx, 'GET', uri(ctx, ctx.samples['MR_small.dcm'], '&contentType=image%2Fpng&rows=32&columns=32'));
    expectStatus(r, 200, 406);
    if (r.status === 406) return 'PNG not offered (406)';
    expectType(r, 'image/png');
    assert(startsWith(r, [0x89, 0x50, 0x4e, 0x47]), 'the body does not start with the PNG signature');
    return `${r.bytes.length} bytes of PNG`;
  }),
  check('WADO-URI Table 8.7.4-1 a Structured Report without contentType: text/html, or 406', async (ctx) => {
    const r = await req(ctx, 'GET', uri(ctx, ctx.samples['test-SR.dcm']));
    expectStatus(r, 200, 406);
    if (r.status === 406) return 'reports not rendered (406)';
    expectType(r, 'text/html');
    assert(/<html/i.test(r.text()), 'the body is not an HTML document');
    return `${r.bytes.length} bytes of HTML`;
  }),
  check('WADO-URI §9 without requestType → 400', async (ctx) => {
    const ct = ctx.samples['CT_small.dcm'];
    const r = await req(ctx, 'GET', `${ctx.wadoUri}?studyUID=${ct.study}&seriesUID=${ct.series}&objectUID=${ct.sop}`);
    expectStatus(r, 400);
    return undefined;
  }),
  check('WADO-URI §9 an unknown objectUID → 404', async (ctx) => {
    const ct = ctx.samples['CT_small.dcm'];
    const r = await req(ctx, 'GET', uri(ctx, { ...ct, sop: `2.25.${Date.now()}` }, '&contentType=application%2Fdicom'));
    expectStatus(r, 404);
    return undefined;
  }),
];
