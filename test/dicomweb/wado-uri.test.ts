import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCaller } from '../../server/access.js';
import { parseDeidViews } from '../../server/deid/settings.js';
import { parseLabelRules } from '../../server/labels.js';
import { binaryParser, createTestArchive, multipartBody, sample, type TestArchive, type Who } from '../helpers.js';
import { imageInstance } from '../render/images.js';
import { syntheticInstance, uid } from '../synthetic.js';

// WADO-URI (PS3.18 §9) over HTTP: images checked by decoding them and
// reading pixel values, instances by their media type and bytes.

let a: TestArchive;
const grid = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));
type Uids = { studyUid: string; seriesUid: string; sopInstanceUid: string };

/** A 4×4 CT: stored values 824, 1064, 1264 (−200, 40, 240 HU) and the rest 0, window 40/400. */
const ct = imageInstance({
  rows: 4,
  columns: 4,
  values: grid(16, (i) => [824, 1064, 1264][i] ?? 0),
  signed: true,
  attrs: { RescaleIntercept: '-1024', RescaleSlope: '1', WindowCenter: '40', WindowWidth: '400' },
});
/** 4×4, 8-bit, left half 0 and right half 200, window exact (output ≈ input). */
const halves = imageInstance({
  rows: 4,
  columns: 4,
  bitsAllocated: 8,
  values: grid(16, (i) => (i % 4 < 2 ? 0 : 200)),
  attrs: { WindowCenter: '128', WindowWidth: '256', VOILUTFunction: 'LINEAR_EXACT' },
});
/** Three frames of 8×8, frame k all 60·k, window exact. */
const multi = imageInstance({
  rows: 8,
  columns: 8,
  bitsAllocated: 8,
  frames: 3,
  values: grid(192, (i) => 60 * (Math.floor(i / 64) + 1)),
  attrs: { WindowCenter: '128', WindowWidth: '256', VOILUTFunction: 'LINEAR_EXACT' },
});
const vip = imageInstance({ rows: 2, columns: 2, bitsAllocated: 8, values: [1, 2, 3, 4], attrs: { PatientID: 'VIP-001' } });
/** No burned-in annotation declared: withheld from a de-identified view. */
const withheld = syntheticInstance({ Modality: 'OT' });
const CT = {
  studyUid: '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322',
  seriesUid: '1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322',
  sopInstanceUid: '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322',
};
/** test-SR.dcm: a structured report, no pixel data. */
const SR: Uids = {
  studyUid: '1.2.276.0.7230010.3.1.4.2139363186.7819.982086466.2',
  seriesUid: '1.2.276.0.7230010.3.1.4.2139363186.7819.982086466.3',
  sopInstanceUid: '1.2.276.0.7230010.3.1.4.2139363186.7819.982086466.4',
};
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const IMPLICIT_LE = '1.2.840.10008.1.2';

const RESEARCHER: Who = { sub: 'res-1', roles: ['researcher'] };
const DEID = { key: 'a-test-deid-key-that-is-long-enough-0123', views: parseDeidViews('researcher=modified-dates', undefined) };
const pseudo = (u: string) =>
  a.deps.research!.viewOf(newCaller({ sub: 'x', roles: ['researcher'], clearances: [] }, { protocol: 'cli', command: 'test' }))!.deidentifier.uid(u);
const pseudoUids = (x: Uids): Uids => ({ studyUid: pseudo(x.studyUid), seriesUid: pseudo(x.seriesUid), sopInstanceUid: pseudo(x.sopInstanceUid) });

/** MR_small_implicit.dcm, stored in Implicit VR Little Endian. */
const mrImplicit: Uids = {
  studyUid: '1.3.6.1.4.1.5962.1.2.4.20040826185059.5457',
  seriesUid: '1.3.6.1.4.1.5962.1.3.4.1.20040826185059.5457',
  sopInstanceUid: '1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457',
};

beforeAll(async () => {
  a = await createTestArchive({ deid: DEID, labelRules: parseLabelRules(JSON.stringify([{ label: 'vip', when: { PatientID: ['VIP-001'] } }])) });
  const m = multipartBody([
    ct.bytes,
    halves.bytes,
    multi.bytes,
    vip.bytes,
    withheld.bytes,
    sample('CT_small.dcm'),
    sample('MR_small_implicit.dcm'),
    sample('test-SR.dcm'),
  ]);
  const res = await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body);
  expect(res.status).toBe(200);
});
afterAll(async () => {
  await a?.close();
});

const wado = (x: Uids, extra = '', base = '/wado') =>
  `${base}?requestType=WADO&studyUID=${x.studyUid}&seriesUID=${x.seriesUid}&objectUID=${x.sopInstanceUid}${extra}`;
const get = (path: string, who?: Who) => (who ? a.as(who) : a.request).get(path).buffer(true).parse(binaryParser);
async function pixels(image: Buffer) {
  const { data, info } = await sharp(image).raw().toBuffer({ resolveWithObject: true });
  return { ...info, at: (x: number, y: number, c = 0) => data[(y * info.width + x) * info.channels + c] };
}
const errorOf = (res: { body: Buffer }) => JSON.parse(res.body.toString('utf8')) as { error: string; message: string };

describe('WADO-URI images', () => {
  it('answers image/jpeg when no contentType is given, windowed by the stored window', async () => {
    const res = await get(wado(ct));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('image/jpeg');
    const p = await pixels(res.body);
    expect([p.width, p.height]).toEqual([4, 4]);
    expect(p.at(0, 0)).toBeLessThan(20);
  });

  it('is also served at /dicom-web/wado', async () => {
    const res = await get(wado(ct, '', '/dicom-web/wado'));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('image/jpeg');
  });

  it('makes PNG at the rows and columns asked, keeping the aspect ratio when one is given', async () => {
    const both = await get(wado(halves, '&contentType=image/png&rows=8&columns=8'));
    expect(both.status).toBe(200);
    expect(both.headers['content-type']).toBe('image/png');
    const p = await pixels(both.body);
    expect([p.width, p.height]).toEqual([8, 8]);
    const rowsOnly = await pixels((await get(wado(halves, '&contentType=image/png&rows=2'))).body);
    expect([rowsOnly.width, rowsOnly.height]).toEqual([2, 2]);
  });

  it('applies windowCenter and windowWidth in place of the stored window', async () => {
    const stored = await pixels((await get(wado(ct, '&contentType=image/png'))).body);
    const windowed = await pixels((await get(wado(ct, '&contentType=image/png&windowCenter=-200&windowWidth=100'))).body);
    // −200 HU is below the stored window 40/400 (black) and the centre of −200/100 (mid grey).
    expect(stored.at(0, 0)).toBe(0);
    expect(windowed.at(0, 0)).toBeGreaterThan(100);
    expect(windowed.at(0, 0)).toBeLessThan(156);
    expect(windowed.at(1, 0)).toBe(255);
  });

  it('shows only the region asked, scaled to rows and columns when given', async () => {
    const right = await pixels((await get(wado(halves, '&contentType=image/png&region=0.5,0,1,1'))).body);
    expect([right.width, right.height]).toEqual([2, 4]);
    expect(right.at(0, 0)).toBeGreaterThan(190);
    const left = await pixels((await get(wado(halves, '&contentType=image/png&region=0,0,0.5,0.5&rows=4&columns=4'))).body);
    expect([left.width, left.height]).toEqual([4, 4]);
    expect(left.at(3, 3)).toBeLessThan(10);
  });

  it('renders the frame frameNumber names, and 404 for one the instance lacks', async () => {
    const second = await pixels((await get(wado(multi, '&contentType=image/png&frameNumber=2'))).body);
    expect(second.at(4, 4)).toBeGreaterThan(115);
    expect(second.at(4, 4)).toBeLessThan(125);
    const first = await pixels((await get(wado(multi, '&contentType=image/png'))).body);
    expect(first.at(4, 4)).toBeLessThan(65);
    const missing = await get(wado(multi, '&frameNumber=4'));
    expect(missing.status).toBe(404);
    expect(errorOf(missing).error).toBe('FrameNotFound');
  });

  it('animates every frame as image/gif when no frameNumber is given', async () => {
    const res = await get(wado(multi, '&contentType=image/gif'));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('image/gif');
    expect((await sharp(res.body).metadata()).pages).toBe(3);
  });

  it('takes the first type of a contentType list that it makes', async () => {
    const res = await get(wado(ct, `&contentType=${encodeURIComponent('text/html, image/png;q=0.9, image/jpeg;q=0.5')}`));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('image/png');
  });

  it('answers 422 for an image of an instance without pixel data, which it still sends as application/dicom', async () => {
    const res = await get(wado(SR, '&contentType=image/jpeg'));
    expect(res.status).toBe(422);
    expect(errorOf(res).message).toBeTruthy();
    expect((await get(wado(SR, '&contentType=application/dicom'))).status).toBe(200);
  });

  it('honours imageQuality for JPEG', async () => {
    const big = imageInstance({ rows: 64, columns: 64, bitsAllocated: 8, values: grid(4096, (i) => (i * 37) % 251) });
    const m = multipartBody([big.bytes]);
    expect((await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
    const low = await get(wado(big, '&imageQuality=5'));
    const high = await get(wado(big, '&imageQuality=100'));
    expect(low.body.length).toBeLessThan(high.body.length);
  });
});

describe('WADO-URI application/dicom', () => {
  it('sends the instance in Explicit VR Little Endian when no transferSyntax is given', async () => {
    const res = await get(wado(mrImplicit, '&contentType=application/dicom'));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(`application/dicom; transfer-syntax=${EXPLICIT_LE}`);
    expect(res.body.subarray(128, 132).toString('latin1')).toBe('DICM');
  });

  it('sends the transferSyntax asked, as stored or transcoded, and 406 for one Cairn cannot make', async () => {
    const stored = await get(wado(mrImplicit, `&contentType=application/dicom&transferSyntax=${IMPLICIT_LE}`));
    expect(stored.status).toBe(200);
    expect(stored.headers['content-type']).toBe(`application/dicom; transfer-syntax=${IMPLICIT_LE}`);
    const explicit = await get(wado(mrImplicit, `&contentType=application/dicom&transferSyntax=${EXPLICIT_LE}`));
    expect(explicit.headers['content-type']).toBe(`application/dicom; transfer-syntax=${EXPLICIT_LE}`);
    const mpeg = await get(wado(mrImplicit, '&contentType=application/dicom&transferSyntax=1.2.840.10008.1.2.4.100'));
    expect(mpeg.status).toBe(406);
    expect(errorOf(mpeg).message).toBeTruthy();
  });
});

describe('WADO-URI refusals', () => {
  it.each([
    ['no requestType', (x: Uids) => wado(x).replace('requestType=WADO&', '')],
    ['another requestType', (x: Uids) => wado(x).replace('requestType=WADO', 'requestType=WADX')],
    ['no objectUID', (x: Uids) => wado(x).replace(/&objectUID=[^&]*/, '')],
    ['a bad studyUID', (x: Uids) => wado({ ...x, studyUid: '1.2.abc' })],
    ['windowCenter alone', (x: Uids) => wado(x, '&windowCenter=40')],
    ['rows of 0', (x: Uids) => wado(x, '&rows=0')],
    ['a region out of range', (x: Uids) => wado(x, '&region=0,0,1.5,1')],
    ['imageQuality of 0', (x: Uids) => wado(x, '&imageQuality=0')],
    ['transferSyntax with an image', (x: Uids) => wado(x, `&transferSyntax=${EXPLICIT_LE}`)],
    ['rows with application/dicom', (x: Uids) => wado(x, '&contentType=application/dicom&rows=8')],
    ['a presentation state', (x: Uids) => wado(x, `&presentationUID=${uid()}&presentationSeriesUID=${uid()}`)],
    ['anonymize without a de-identified view', (x: Uids) => wado(x, '&contentType=application/dicom&anonymize=yes')],
    ['a parameter given twice', (x: Uids) => wado(x, '&rows=4&rows=8')],
  ])('answers 400 with a JSON body for %s', async (_name, url) => {
    const res = await get(url(ct));
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(errorOf(res).message).toBeTruthy();
  });

  it('answers 406 with a JSON body for a content type it does not make', async () => {
    const res = await get(wado(ct, '&contentType=text/html'));
    expect(res.status).toBe(406);
    expect(errorOf(res).error).toBe('NotAcceptable');
  });

  it('records a retrieve audit event naming the instance sent', async () => {
    const probe = imageInstance({ rows: 2, columns: 2, bitsAllocated: 8, values: [1, 2, 3, 4] });
    const m = multipartBody([probe.bytes]);
    expect((await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
    expect((await get(wado(probe))).status).toBe(200);
    const row = await a.deps.db('audit_events').where({ action: 'retrieve', path: '/wado' }).whereRaw('? = any(instance_uids)', [probe.sopInstanceUid]).first();
    expect(row?.study_uids).toContain(probe.studyUid);
  });

  it('answers 401 without credentials', async () => {
    expect((await a.anonymous.get(wado(ct))).status).toBe(401);
  });

  it('is 404 for a study the caller may not see, like a missing one, for images and instances alike', async () => {
    for (const extra of ['', '&contentType=application/dicom']) {
      const hidden = await get(wado(vip, extra));
      const missing = await get(wado({ ...vip, sopInstanceUid: uid() }, extra));
      expect(hidden.status).toBe(404);
      expect(missing.status).toBe(404);
      expect(errorOf(hidden).error).toBe(errorOf(missing).error);
    }
    expect((await get(wado({ ...ct, seriesUid: uid() }))).status).toBe(404);
  });
});

describe('WADO-URI of reports and documents', () => {
  it('shows a structured report as text/html by default, its content tree escaped and nested', async () => {
    const res = await get(wado(SR));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    const html = res.body.toString('utf8');
    expect(html).toContain('<title>Diagnosis</title>');
    expect(html).toContain('<b>Text Code</b>: A mass of');
    expect(html).toMatch(/<ul>[\s\S]*<ul>/);
    expect(html).not.toMatch(/<script/i);
  });

  it('shows it as text/plain when asked, and refuses a type a report is not made in', async () => {
    const res = await get(wado(SR, '&contentType=text/plain'));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    const text = res.body.toString('utf8');
    expect(text.split('\n')[0]).toBe('Diagnosis');
    expect(text).toContain('Text Code: A mass of');
    const pdf = await get(wado(SR, '&contentType=application/pdf'));
    expect(pdf.status).toBe(406);
    expect(JSON.parse(pdf.body.toString('utf8')).message).toMatch(/text\/html or text\/plain/);
  });

  it('refuses a report type for an image, and still makes the image when the list also names one', async () => {
    expect((await get(wado(ct, '&contentType=text/html'))).status).toBe(406);
    const res = await get(wado(ct, `&contentType=${encodeURIComponent('text/plain, image/png')}`));
    expect(res.headers['content-type']).toBe('image/png');
  });

  it('sends an encapsulated PDF as the document itself, cut to its Encapsulated Document Length', async () => {
    // Odd length, so the stored value carries one byte of padding (PS3.3 §C.24.2.1).
    const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(3001, 0x41), Buffer.from('\n%%EOF\n')]);
    expect(pdf.length % 2).toBe(1);
    const doc = { studyUid: uid(), seriesUid: uid(), sopInstanceUid: uid() };
    const meta = {
      '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.104.1'] },
      '00080018': { vr: 'UI', Value: [doc.sopInstanceUid] },
      '00080060': { vr: 'CS', Value: ['DOC'] },
      '00100020': { vr: 'LO', Value: ['DOC-1'] },
      '0020000D': { vr: 'UI', Value: [doc.studyUid] },
      '0020000E': { vr: 'UI', Value: [doc.seriesUid] },
      '00420011': { vr: 'OB', BulkDataURI: 'report.pdf' },
      '00420012': { vr: 'LO', Value: ['application/pdf'] },
      '00420015': { vr: 'UL', Value: [pdf.length] },
    };
    const boundary = 'cairn-wado-uri-pdf';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Type: application/dicom+json\r\n\r\n${JSON.stringify([meta])}\r\n`),
      Buffer.from(`--${boundary}\r\nContent-Type: application/pdf\r\nContent-Location: report.pdf\r\n\r\n`),
      pdf,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const stored = await a.request
      .post('/dicom-web/studies')
      .set('Content-Type', `multipart/related; type="application/dicom+json"; boundary=${boundary}`)
      .send(body);
    expect(stored.status).toBe(200);
    for (const extra of ['', '&contentType=application/pdf']) {
      const res = await get(wado(doc, extra));
      expect(res.status, extra).toBe(200);
      expect(res.headers['content-type']).toBe('application/pdf');
      expect(res.body.equals(pdf)).toBe(true);
    }
    expect((await get(wado(doc, '&contentType=text/html'))).status).toBe(406);
  });

  it('shows a researcher the report of the de-identified instance, not the stored one', async () => {
    expect((await get('/dicom-web/instances', RESEARCHER)).status).toBe(200);
    const res = await get(wado(pseudoUids(SR), '&contentType=text/plain'), RESEARCHER);
    expect(res.status).toBe(200);
    // The UID of a UIDREF content item is replaced in the de-identified instance (PS3.15 Table E.1-1, U).
    expect((await get(wado(SR, '&contentType=text/plain'))).body.toString('utf8')).toContain('Some UID: 1.2.3.4.5');
    expect(res.body.toString('utf8')).toMatch(/Some UID: 2\.25\./);
    expect(res.body.toString('utf8')).not.toContain('1.2.3.4.5');
  });
});

describe('WADO-URI for a de-identified view', () => {
  // A researcher learns the pseudonymous UIDs from a search, as a client does before it retrieves.
  beforeAll(async () => {
    expect((await get('/dicom-web/instances', RESEARCHER)).status).toBe(200);
  });

  it('sends a researcher the de-identified instance, by its pseudonymous UIDs, with or without anonymize=yes', async () => {
    for (const extra of ['&contentType=application/dicom', '&contentType=application/dicom&anonymize=yes']) {
      const res = await get(wado(pseudoUids(CT), extra), RESEARCHER);
      expect(res.status).toBe(200);
      const body = res.body.toString('latin1');
      for (const v of ['CompressedSamples', 'JFK IMAGING', CT.studyUid, CT.sopInstanceUid]) expect(body, v).not.toContain(v);
    }
  });

  it('finds nothing for a researcher who sends original UIDs', async () => {
    expect((await get(wado(CT, '&contentType=application/dicom'), RESEARCHER)).status).toBe(404);
  });

  it('refuses a researcher the image of an instance the view withholds with 403', async () => {
    const res = await get(wado(pseudoUids(withheld)), RESEARCHER);
    expect(res.status).toBe(403);
    expect(res.body.toString('utf8')).not.toContain(withheld.sopInstanceUid);
    expect((await get(wado(withheld))).status).toBe(200);
  });
});
