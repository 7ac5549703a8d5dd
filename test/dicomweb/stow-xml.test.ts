import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { itemDepth, NativeXmlError, nativeXmlToJson } from '../../server/dicom/native-xml.js';
import { binaryParser, createTestArchive, parseMultipart, type RelatedPart, relatedBody, type TestArchive } from '../helpers.js';
import { uid } from '../synthetic.js';

// STOW-RS with application/dicom+xml metadata (PS3.18 §10.5.1.4): each
// metadata part one Native DICOM Model document (PS3.19 §A.1), its bulk data
// in other parts by Content-Location, stored like DICOM JSON metadata; a
// document that cannot be read fails that instance alone.

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive();
});
afterAll(async () => {
  await a?.close();
});

type Part = RelatedPart;
const multipart = (parts: Part[]) => relatedBody('application/dicom+xml', parts);

const stow = (parts: Part[]) => {
  const b = multipart(parts);
  return a.request.post('/dicom-web/studies').set('Content-Type', b.contentType).set('Accept', 'application/dicom+json').send(b.body);
};
const xmlPart = (doc: string): Part => ({ type: 'application/dicom+xml', body: Buffer.from(doc) });
const attr = (tag: string, vr: string, inner: string) => `<DicomAttribute tag="${tag}" vr="${vr}">${inner}</DicomAttribute>`;
const val = (...values: string[]) => values.map((v, i) => `<Value number="${i + 1}">${v}</Value>`).join('');

function imageXml(over: { study?: string; sop?: string; extra?: string } = {}) {
  const [study, series, sop] = [over.study ?? uid(), uid(), over.sop ?? uid()];
  const doc = `<?xml version="1.0" encoding="UTF-8"?>
<NativeDicomModel xml:space="preserve">
  ${attr('00080016', 'UI', val('1.2.840.10008.5.1.4.1.1.7'))}
  ${attr('00080018', 'UI', val(sop))}
  ${attr('00080060', 'CS', val('OT'))}
  ${attr('00100010', 'PN', '<PersonName number="1"><Alphabetic><FamilyName>Müller</FamilyName><GivenName>Jörg</GivenName></Alphabetic></PersonName>')}
  ${attr('00100020', 'LO', val('XML&amp;1'))}
  ${attr('0020000D', 'UI', val(study))}
  ${attr('0020000E', 'UI', val(series))}
  ${attr('00200013', 'IS', val('7'))}
  ${attr('00280002', 'US', val('1'))}
  ${attr('00280004', 'CS', val('MONOCHROME2'))}
  ${attr('00280010', 'US', val('4'))}
  ${attr('00280011', 'US', val('4'))}
  ${attr('00280100', 'US', val('8'))}
  ${attr('00280101', 'US', val('8'))}
  ${attr('00280102', 'US', val('7'))}
  ${attr('00280103', 'US', val('0'))}
  ${over.extra ?? ''}
  ${attr('7FE00010', 'OB', `<BulkData uri="pixels/${sop}"/>`)}
</NativeDicomModel>`;
  return { doc, study, series, sop, location: `pixels/${sop}` };
}

async function metadata(i: { study: string; series: string; sop: string }) {
  const res = await a.request.get(`/dicom-web/studies/${i.study}/series/${i.series}/instances/${i.sop}/metadata`).set('Accept', 'application/dicom+json');
  expect(res.status).toBe(200);
  return res.body[0] as Record<string, { Value?: unknown[] }>;
}

describe('STOW-RS of Native DICOM Model XML and bulk data', () => {
  it('stores the instance, its attributes and pixels coming back as sent', async () => {
    const i = imageXml({
      extra: attr(
        '00081115',
        'SQ',
        `<Item number="2">${attr('0020000E', 'UI', val('1.2.3.2'))}</Item><Item number="1">${attr('0020000E', 'UI', val('1.2.3.1'))}</Item>`,
      ),
    });
    const pixels = Buffer.from(Array.from({ length: 16 }, (_, n) => n * 5));
    const res = await stow([xmlPart(i.doc), { type: 'application/octet-stream', location: i.location, body: pixels }]);
    expect(res.status).toBe(200);
    const m = await metadata(i);
    expect(m['00100010'].Value).toEqual([{ Alphabetic: 'Müller^Jörg' }]);
    expect(m['00100020'].Value).toEqual(['XML&1']);
    expect(m['00200013'].Value).toEqual([7]);
    // Items in the order of their number attribute.
    expect((m['00081115'].Value as Record<string, { Value: string[] }>[]).map((it) => it['0020000E'].Value[0])).toEqual(['1.2.3.1', '1.2.3.2']);
    const f = await a.request
      .get(`/dicom-web/studies/${i.study}/series/${i.series}/instances/${i.sop}/frames/1`)
      .set('Accept', 'multipart/related; type="application/octet-stream"')
      .buffer(true)
      .parse(binaryParser);
    expect(parseMultipart(f.body, f.headers['content-type'])[0].body).toEqual(pixels);
  });

  it('fails a document it cannot read alone, with 0xC000 and the reason, and stores the others', async () => {
    const good = imageXml();
    const deep = `<NativeDicomModel>${attr('00081115', 'SQ', `${'<Item number="1"><DicomAttribute tag="00081115" vr="SQ">'.repeat(10_000)}`)}</NativeDicomModel>`;
    const res = await stow([
      xmlPart(good.doc),
      xmlPart('<NativeDicomModel><DicomAttribute tag="00100010" vr="PN">'),
      xmlPart('<!DOCTYPE x [<!ENTITY a "aaaa">]><NativeDicomModel>&a;</NativeDicomModel>'),
      xmlPart(deep),
      { type: 'application/octet-stream', location: good.location, body: Buffer.alloc(16) },
    ]);
    expect(res.status).toBe(202);
    const failed = res.body['00081198'].Value as Record<string, { Value: unknown[] }>[];
    expect(failed.map((f) => f['00081197'].Value[0])).toEqual([0xc000, 0xc000, 0xc000]);
    expect(res.body['00081199'].Value).toHaveLength(1);
  });

  it('answers 415 for a metadata type Cairn does not read, and 400 when no metadata part is of the type named', async () => {
    const b = multipart([xmlPart('<NativeDicomModel/>')]);
    const other = await a.request.post('/dicom-web/studies').set('Content-Type', b.contentType.replace('dicom+xml', 'dicom+yaml')).send(b.body);
    expect(other.status).toBe(415);
    const none = await stow([{ type: 'application/dicom+json', body: Buffer.from('{}') }]);
    expect(none.status).toBe(400);
    expect(none.body.message, none.body.message).toContain('application/dicom+xml');
  });
});

describe('reading the Native DICOM Model', () => {
  it('reads person name groups and components, numbers, InlineBinary and empty values', () => {
    const ds = nativeXmlToJson(
      `<NativeDicomModel>
        ${attr('00100010', 'PN', '<PersonName number="1"><Alphabetic><FamilyName>Yamada</FamilyName><GivenName>Tarou</GivenName></Alphabetic><Ideographic><FamilyName>山田</FamilyName><GivenName>太郎</GivenName></Ideographic></PersonName>')}
        ${attr('00181310', 'US', val('0', '64', '64', '0'))}
        ${attr('00280030', 'DS', val('0.5', '0.25'))}
        ${attr('00091010', 'OB', '<InlineBinary>AAEC\nAw==</InlineBinary>')}
        ${attr('00080080', 'LO', '<Value number="1"/>')}
        ${attr('00081030', 'LO', '')}
      </NativeDicomModel>`,
      8,
    );
    expect(ds['00100010'].Value).toEqual([{ Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎' }]);
    expect(ds['00181310'].Value).toEqual([0, 64, 64, 0]);
    expect(ds['00280030'].Value).toEqual([0.5, 0.25]);
    expect(ds['00091010'].InlineBinary).toBe('AAECAw==');
    expect(ds['00080080'].Value).toEqual([null]);
    expect(ds['00081030']).toEqual({ vr: 'LO' });
  });

  it('refuses what the model does not allow, naming the attribute', () => {
    const bad = (doc: string) => () => nativeXmlToJson(doc, 8);
    expect(bad(`<NativeDicomModel>${attr('0010001', 'PN', '')}</NativeDicomModel>`)).toThrow(NativeXmlError);
    expect(bad(`<NativeDicomModel><DicomAttribute tag="00100010"/></NativeDicomModel>`)).toThrow(/00100010/);
    expect(bad(`<NativeDicomModel>${attr('00280010', 'US', val('four'))}</NativeDicomModel>`)).toThrow(/not a number/);
    expect(bad('<Other/>')).toThrow(/NativeDicomModel/);
    expect(itemDepth('<Item><Item/><Item><Item></Item></Item></Item>')).toBe(3);
  });
});
