import { describe, expect, it } from 'vitest';
import { parseQidoQuery } from '../../server/dicomweb/qido-params.js';

const rejects = (qs: string, names: string, level: 'study' | 'series' | 'instance' = 'study') => expect(() => parseQidoQuery(qs, level)).toThrow(names);

describe('parseQidoQuery', () => {
  it('rejects an impossible date', () => rejects('StudyDate=20200230', '20200230'));
  it('rejects a malformed time', () => rejects('StudyTime=2561', 'StudyTime'));
  it('rejects a key below the query level', () => rejects('SOPInstanceUID=1.2.3', 'SOPInstanceUID'));
  it('rejects a known attribute that is not a matching key', () => rejects('StudyComments=x', 'StudyComments'));
  it('rejects an unknown includefield', () => rejects('includefield=NoSuchThing', 'NoSuchThing'));
  it('rejects a bad limit', () => rejects('limit=ten', 'limit'));
  it('rejects a bad UID in a list', () => rejects('StudyInstanceUID=1.2,x.y', 'x.y'));
  it('rejects a bad fuzzymatching value', () => rejects('fuzzymatching=yes', 'fuzzymatching'));
  it('caps limit at the server maximum', () => expect(parseQidoQuery('limit=5000', 'study').limit).toBe(1000));
  it('splits includefield after percent-decoding', () => {
    expect([...parseQidoQuery('includefield=00081030%2CModality', 'series').include]).toEqual(['00081030', '00080060']);
  });
  it('pads time bounds to their precision', () => {
    expect(parseQidoQuery('StudyTime=10-1030', 'study').matches[0].cond).toEqual({ op: 'time', from: '100000.000000', to: '103099.999999' });
  });
});

describe('parseQidoQuery and text PostgreSQL cannot take', () => {
  const bad = (qs: string, message: RegExp) => {
    let err: unknown;
    try {
      parseQidoQuery(qs, 'study');
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ status: 400, code: 'InvalidQuery' });
    expect((err as Error).message).toMatch(message);
  };

  it('refuses a NUL in a value, naming the parameter', () => bad('PatientSex=*%00*', /^query parameter PatientSex contains the control character U\+0000$/));
  it('refuses NULs after a person name', () => bad(`PatientName=${'%00'.repeat(200)}`, /PatientName contains the control character U\+0000/));
  it('refuses other control characters, C1 ones included', () => {
    bad('PatientID=a%01b', /PatientID contains the control character U\+0001/);
    bad('AccessionNumber=%7F', /AccessionNumber .*U\+007F/);
    bad('StudyDescription=%C2%85', /StudyDescription .*U\+0085/);
  });
  it('refuses bytes that are not UTF-8', () => {
    bad('PatientName=%FF', /^query parameter PatientName is not valid UTF-8$/);
    bad('PatientName=%C3', /PatientName is not valid UTF-8/);
    // An encoded lone surrogate (CESU-8) is not UTF-8 either.
    bad('PatientID=%ED%A0%80', /PatientID is not valid UTF-8/);
  });
  it('checks every parameter, names and the optional ones too', () => {
    bad('includefield=%00', /includefield contains/);
    bad('limit=1%00', /limit contains/);
    bad('Patient%00Name=x', /query parameter "Patient%00Name" contains/);
  });
  it('decodes as before what is valid: UTF-8, "+" as a space, a "%" that escapes nothing', () => {
    const q = parseQidoQuery('PatientName=M%C3%BCller*&StudyDescription=a+b&PatientID=100%25&AccessionNumber=50%', 'study');
    expect(q.matches.map((m) => m.cond)).toEqual([
      { op: 'pn', groups: ['MÜLLER%'] },
      { op: 'in', values: ['a b'] },
      { op: 'in', values: ['100%'] },
      { op: 'in', values: ['50%'] },
    ]);
  });
});
