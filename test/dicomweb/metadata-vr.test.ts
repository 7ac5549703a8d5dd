import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attributesText } from '../../server/db/build-rows.js';
import { up as resolveStoredVrs } from '../../migrations/20261203090000_resolved_vrs.js';
import { createTestArchive, multipartBody, sample, type TestArchive } from '../helpers.js';

// PS3.18 §F.2.3: "vr" is one of the VRs of PS3.5 Table 6.2-1. A strict client
// refuses a whole metadata response for one value that is not.
const TABLE_6_2_1 = new Set('AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV'.split(' '));

// MR_small_implicit.dcm: Implicit VR Little Endian, so no VR is in the file.
const MR = {
  study: '1.3.6.1.4.1.5962.1.2.4.20040826185059.5457',
  series: '1.3.6.1.4.1.5962.1.3.4.1.20040826185059.5457',
  instance: '1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457',
};
const mrUrl = `/dicom-web/studies/${MR.study}/series/${MR.series}/instances/${MR.instance}`;

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive();
  const m = multipartBody([sample('MR_small_implicit.dcm'), sample('CT_small.dcm')]);
  const res = await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body);
  expect(res.status).toBe(200);
  expect(res.body['00081199'].Value[0]['00081155'].Value).toEqual([MR.instance]);
});
afterAll(async () => {
  await a?.close();
});

type Json = Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string }>;

function vrsOf(d: Json, out: string[] = []): string[] {
  for (const attr of Object.values(d)) {
    out.push(attr.vr);
    if (attr.vr === 'SQ') for (const i of (attr.Value ?? []) as Json[]) vrsOf(i, out);
  }
  return out;
}

describe('VRs in metadata of an Implicit VR instance', () => {
  it('are all VRs of PS3.5 Table 6.2-1, Pixel Data OW (PS3.5 §A.1)', async () => {
    for (const url of [`${mrUrl}/metadata`, `/dicom-web/studies/${MR.study}/metadata`]) {
      const res = await a.request.get(url);
      expect(res.status).toBe(200);
      const vrs = res.body.flatMap((m: Json) => vrsOf(m));
      expect(vrs.length).toBeGreaterThan(40);
      expect(vrs.filter((vr: string) => !TABLE_6_2_1.has(vr))).toEqual([]);
      expect(res.body[0]['7FE00010'].vr).toBe('OW');
    }
  });

  it('resolve "US or SS" from Pixel Representation as the explicit twin of the file states it', async () => {
    // MR_small.dcm, the same instance in Explicit VR, says SS (Pixel Representation is 1).
    const m = (await a.request.get(`${mrUrl}/metadata`)).body[0];
    expect(m['00280103']).toEqual({ vr: 'US', Value: [1] });
    expect(m['00280106']).toEqual({ vr: 'SS', Value: [0] });
    expect(m['00280107']).toEqual({ vr: 'SS', Value: [4000] });
  });

  it('are valid for attributes a search asks for and the instance lacks', async () => {
    const res = await a.request.get(`/dicom-web/studies/${MR.study}/instances?includefield=PixelPaddingValue,LUTData,OffsetOfTheNextDirectoryRecord`);
    expect(res.status).toBe(200);
    expect(res.body[0]['00280120']).toEqual({ vr: 'US' });
    expect(res.body[0]['00283006']).toEqual({ vr: 'OW' });
    expect(res.body[0]['00041400']).toEqual({ vr: 'UL' });
  });
});

describe('the migration that resolves stored VRs', () => {
  it('fixes metadata, bulk data and study attributes stored with VRs that are not VRs, and leaves other rows alone', async () => {
    const db = a.deps.db;
    const ct = await db('instances').whereNot('sop_instance_uid', MR.instance).first('sop_instance_uid', 'metadata');
    // As Cairn stored them before: the registry's "ox" on the Pixel Data of
    // an Implicit VR instance, and an "xs" element in study attributes.
    await db('instances')
      .where('sop_instance_uid', MR.instance)
      .update({
        metadata: db.raw(`replace(metadata, '"7FE00010":{"vr":"OW"', '"7FE00010":{"vr":"ox"')`),
        bulk: db.raw(`jsonb_set(bulk, '{7FE00010,vr}', '"ox"')`),
      });
    const study = await db('studies').where('study_uid', MR.study).first('attributes');
    const old = { ...study.attributes, '00280106': { vr: 'xs', Value: [5] } };
    await db('studies')
      .where('study_uid', MR.study)
      .update({ attributes: JSON.stringify(old), attributes_text: attributesText(old) });
    expect((await a.request.get(`${mrUrl}/metadata`)).body[0]['7FE00010'].vr).toBe('ox');

    await resolveStoredVrs(db);

    const res = await a.request.get(`${mrUrl}/metadata`);
    expect(res.body[0]['7FE00010'].vr).toBe('OW');
    expect(vrsOf(res.body[0]).filter((vr) => !TABLE_6_2_1.has(vr))).toEqual([]);
    const row = await db('instances').where('sop_instance_uid', MR.instance).first('bulk');
    expect(row.bulk['7FE00010'].vr).toBe('OW');
    const fixed = await db('studies').where('study_uid', MR.study).first('attributes', 'attributes_text');
    expect(fixed.attributes['00280106']).toEqual({ vr: 'US', Value: [5] });
    expect(fixed.attributes_text).toBe(attributesText(fixed.attributes));
    expect((await db('instances').where('sop_instance_uid', ct.sop_instance_uid).first('metadata')).metadata).toBe(ct.metadata);
  });
});
