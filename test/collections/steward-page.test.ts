import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qidoQueryOf } from '../../server/collections/study-list-filter.js';
import { parseDeidViews } from '../../server/deid/settings.js';
import { createTestArchive, multipartBody, sample, type TestArchive, type Who } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';

// The stewards' page makes a collection from the study list's filter: the
// viewer's URL parameters become the QIDO query OHIF sends for them, and
// that query, posted as a collection, holds the studies the list showed.

const CT_STUDY = '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322';
const STEWARD: Who = { sub: 'steward-1', roles: ['steward'] };
const DEID = { key: 'a-test-deid-key-that-is-long-enough-0123', views: parseDeidViews('researcher=modified-dates', undefined) };
const mr = syntheticInstance({ Modality: 'MR', BurnedInAnnotation: 'NO' });

let a: TestArchive;

beforeAll(async () => {
  a = await createTestArchive({ deid: DEID });
  const m = multipartBody([sample('CT_small.dcm'), mr.bytes]);
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
});
afterAll(async () => {
  await a?.close();
});

describe('the study list filter', () => {
  it('becomes the QIDO query OHIF sends for it', () => {
    expect(qidoQueryOf({ patientName: 'Doe', mrn: '123', startDate: '2024-01-01', endDate: '20241231', modalities: 'CT,MR', accession: 'A*' })).toBe(
      'PatientName=*Doe*&PatientID=*123*&AccessionNumber=A*&StudyDate=20240101-20241231&ModalitiesInStudy=CT%2CMR',
    );
    expect(qidoQueryOf({ startDate: '20240101' })).toBe('StudyDate=20240101-');
    expect(qidoQueryOf({ sortBy: 'studyDate', pageNumber: '2' })).toBe('');
  });

  it('a collection made from that query holds the studies the list showed', async () => {
    const query = qidoQueryOf({ patientName: 'compressed', modalities: 'CT', startDate: '2004-01-01', endDate: '2004-12-31' });
    const r = await a.as(STEWARD).post('/api/collections').send({ name: 'from the list', query });
    expect(r.status).toBe(201);
    expect(r.body.members.studies).toEqual([CT_STUDY]);
  });
});

describe("the stewards' page", () => {
  it("is served with the study list's filter as its query, escaped", async () => {
    const r = await a.anonymous.get('/collections?modalities=CT&patientName=%22%3E%3Cscript%3Ex');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.text).toContain('value="PatientName=*%22%3E%3Cscript%3Ex*&#38;ModalitiesInStudy=CT"');
    expect(r.text).not.toContain('"><script>x');
  });
});
