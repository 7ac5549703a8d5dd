import { describe, expect, it } from 'vitest';
import { parseQidoQuery } from '../../server/dicomweb/qido-params.js';

const rejects = (qs: string, names: string, level: 'study' | 'series' | 'instance' = 'study') =>
  expect(() => parseQidoQuery(qs, level)).toThrow(names);

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
