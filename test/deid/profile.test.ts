import { describe, expect, it } from 'vitest';
import type { DicomJson } from '../../server/dicom/json.js';
import { actionOf, Deidentifier, resolveCombination, shiftDate, withheldReason, type ProfileOptions } from '../../server/deid/profile.js';
import { TABLE_E1_1 } from '../../server/deid/table-e1-1.js';

const KEY = Buffer.from('project-one-key-0123456789abcdef');
const OTHER_KEY = Buffer.from('project-two-key-0123456789abcdef');

function d(options: ProfileOptions = {}, key = KEY): Deidentifier {
  return new Deidentifier(key, options);
}

const STUDY_UID = '1.2.826.0.1.3680043.8.498.1';
const PATIENT: DicomJson = {
  '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.2'] },
  '00080018': { vr: 'UI', Value: ['1.2.826.0.1.3680043.8.498.3'] },
  '00080020': { vr: 'DA', Value: ['20240315'] },
  '00080021': { vr: 'DA', Value: ['20240310'] },
  '00080030': { vr: 'TM', Value: ['101500'] },
  '00080050': { vr: 'SH', Value: ['ACC12345'] },
  '00080060': { vr: 'CS', Value: ['CT'] },
  '00080080': { vr: 'LO', Value: ['Saint Elsewhere Hospital'] },
  '00080090': { vr: 'PN', Value: [{ Alphabetic: 'House^Gregory' }] },
  '00081010': { vr: 'SH', Value: ['CTSTATION7'] },
  '00081030': { vr: 'LO', Value: ['CT chest for Doe John ACC12345'] },
  '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Doe^John' }] },
  '00100020': { vr: 'LO', Value: ['MRN-0042'] },
  '00100030': { vr: 'DA', Value: ['19600101'] },
  '00100040': { vr: 'CS', Value: ['M'] },
  '00101010': { vr: 'AS', Value: ['064Y'] },
  '00101030': { vr: 'DS', Value: [80] },
  '00181000': { vr: 'LO', Value: ['SN-998877'] },
  '00181030': { vr: 'LO', Value: ['Chest routine'] },
  '0020000D': { vr: 'UI', Value: [STUDY_UID] },
  '0020000E': { vr: 'UI', Value: ['1.2.826.0.1.3680043.8.498.2'] },
  '00200052': { vr: 'UI', Value: ['1.2.826.0.1.3680043.8.498.9'] },
  '00280010': { vr: 'US', Value: [512] },
  '00081140': {
    vr: 'SQ',
    Value: [{ '00081150': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.2'] }, '00081155': { vr: 'UI', Value: ['1.2.826.0.1.3680043.8.498.7'] } }],
  },
  '00101002': { vr: 'SQ', Value: [{ '00100020': { vr: 'LO', Value: ['OTHER-1'] } }] },
  '00090010': { vr: 'LO', Value: ['ACME 1.1'] },
  '00091011': { vr: 'LO', Value: ['private secret'] },
  '00091012': { vr: 'DS', Value: [3.5] },
  '60003000': { vr: 'OW', InlineBinary: 'AAAA' },
  '60004000': { vr: 'LT', Value: ['overlay by Doe'] },
};

const value = (out: DicomJson, tag: string) => out[tag]?.Value?.[0];

describe('Table E.1-1 as data', () => {
  it('holds every row of the 2024b table, each tag once', () => {
    expect(TABLE_E1_1).toHaveLength(621);
    expect(new Set(TABLE_E1_1.map((r) => r[0])).size).toBe(621);
  });

  it('names a known action and ten option cells on every row', () => {
    const actions = new Set(['D', 'Z', 'X', 'K', 'C', 'U', 'Z/D', 'X/Z', 'X/D', 'X/Z/D', 'X/Z/U*']);
    for (const [tag, name, basic, options] of TABLE_E1_1) {
      expect(tag === 'private' || /^[0-9A-FX]{8}$/.test(tag), name).toBe(true);
      expect(actions.has(basic), name).toBe(true);
      expect(options, name).toMatch(/^[-KC]{10}$/);
    }
  });

  it('carries the rows the standard gives for chosen attributes', () => {
    const row = (tag: string) => TABLE_E1_1.find((r) => r[0] === tag);
    expect(row('00100010')?.slice(1, 3)).toEqual(["Patient's Name", 'Z']);
    expect(row('00100020')?.[2]).toBe('Z/D');
    expect(row('0020000D')?.slice(2)).toEqual(['U', '-K--------']);
    expect(row('00080020')?.slice(2)).toEqual(['Z', '-----KC---']);
    expect(row('00081140')?.[2]).toBe('X/Z/U*');
    expect(row('60XX3000')?.slice(2)).toEqual(['X', '---------C']);
    expect(row('private')?.slice(2)).toEqual(['X', 'C---------']);
  });
});

describe('actions', () => {
  it('resolves each combination to its alternative that satisfies every Type', () => {
    expect(resolveCombination('Z/D')).toBe('D');
    expect(resolveCombination('X/D')).toBe('D');
    expect(resolveCombination('X/Z/D')).toBe('D');
    expect(resolveCombination('X/Z')).toBe('Z');
    expect(resolveCombination('X/Z/U*')).toBe('U');
    expect(resolveCombination('X')).toBe('X');
  });

  it("lets an option's K win over its C and both over the basic action", () => {
    expect(actionOf('X', '----KC----', ['retainPatientCharacteristics'])).toBe('K');
    expect(actionOf('X', '----KC----', ['fullDates'])).toBe('C');
    expect(actionOf('X', '----KC----', [])).toBe('X');
  });

  it('X removes: the patient age and weight, the other patient IDs go', () => {
    const out = d().apply(PATIENT);
    for (const tag of ['00101010', '00101002', '00101030']) expect(out[tag], tag).toBeUndefined();
  });

  it('Z empties: the accession number and the study date stay present without a value', () => {
    const out = d().apply(PATIENT);
    expect(out['00080050']).toEqual({ vr: 'SH' });
    expect(out['00080020']).toEqual({ vr: 'DA' });
  });

  it('D gives a dummy of the VR: the series date, the institution name (X/Z/D) and the device serial number', () => {
    const out = d().apply(PATIENT);
    expect(value(out, '00080021')).toBe('19000101');
    expect(value(out, '00080080')).toBe('ANONYMIZED');
    expect(value(out, '00181000')).toBe('ANONYMIZED');
  });

  it("Z on the patient's name and ID gives the patient's pseudonym in the project", () => {
    const out = d().apply(PATIENT);
    const pseudonym = d().patientPseudonym(PATIENT);
    expect(pseudonym).toMatch(/^P[0-9A-F]{16}$/);
    expect(value(out, '00100020')).toBe(pseudonym);
    expect(value(out, '00100010')).toEqual({ Alphabetic: pseudonym });
    expect(JSON.stringify(out)).not.toMatch(/Doe|MRN-0042|19600101|House|ACC12345|Elsewhere|SN-998877/);
  });

  it('K keeps: modality, rows, sex only under its option', () => {
    const out = d().apply(PATIENT);
    expect(value(out, '00080060')).toBe('CT');
    expect(value(out, '00280010')).toBe(512);
    expect(out['00100040']).toEqual({ vr: 'CS' });
    expect(value(d({ retainPatientCharacteristics: true }).apply(PATIENT), '00100040')).toBe('M');
  });

  it('U replaces UIDs with 2.25 UIDs, inside sequences too, and keeps class UIDs', () => {
    const out = d().apply(PATIENT);
    const study = String(value(out, '0020000D'));
    expect(study).toMatch(/^2\.25\.[1-9]\d*$/);
    expect(study.length).toBeLessThanOrEqual(64);
    expect(study).toBe(d().uid(STUDY_UID));
    expect(value(out, '00080016')).toBe('1.2.840.10008.5.1.4.1.1.2');
    const item = out['00081140'].Value![0] as DicomJson;
    expect(value(item, '00081155')).toBe(d().uid('1.2.826.0.1.3680043.8.498.7'));
    expect(value(item, '00081150')).toBe('1.2.840.10008.5.1.4.1.1.2');
  });

  it('C cleans: with Clean Descriptors the study description keeps its words but not the identifiers', () => {
    expect(d().apply(PATIENT)['00081030']).toBeUndefined();
    const out = d({ cleanDescriptors: true }).apply(PATIENT);
    expect(value(out, '00081030')).toBe('CT chest for *** **** ********');
    expect(value(out, '00181030')).toBe('Chest routine');
  });
});

describe('UIDs by keyed hash', () => {
  it('maps the same UID to the same UID in a project, and to different ones across projects', () => {
    expect(d().uid(STUDY_UID)).toBe(d().uid(STUDY_UID));
    expect(d().uid(STUDY_UID)).not.toBe(d({}, OTHER_KEY).uid(STUDY_UID));
    expect(d().uid(STUDY_UID)).not.toBe(d().uid(`${STUDY_UID}1`));
  });

  it('keeps the UIDs under Retain UIDs', () => {
    const out = d({ retainUids: true }).apply(PATIENT);
    expect(value(out, '0020000D')).toBe(STUDY_UID);
  });
});

describe('options', () => {
  /** The tags whose output differs between two profiles for the same input. */
  function changed(a: ProfileOptions, b: ProfileOptions): string[] {
    const x = d(a).apply(PATIENT);
    const y = d(b).apply(PATIENT);
    const tags = new Set([...Object.keys(x), ...Object.keys(y)]);
    return [...tags].filter((t) => !['00120063', '00120064', '00280303'].includes(t) && JSON.stringify(x[t]) !== JSON.stringify(y[t])).sort();
  }

  it('Retain Longitudinal Temporal Information, full dates, keeps exactly the dates and times of its column', () => {
    expect(changed({}, { retainLongitudinal: 'full' })).toEqual(['00080020', '00080021', '00080030']);
    const out = d({ retainLongitudinal: 'full' }).apply(PATIENT);
    expect(value(out, '00080020')).toBe('20240315');
    expect(value(out, '00280303')).toBe('UNMODIFIED');
  });

  it('modified dates move every date of one patient by the same days, keeping intervals', () => {
    const p = d({ retainLongitudinal: 'modified' });
    const out = p.apply(PATIENT);
    const days = p.shiftDays(PATIENT);
    expect(days).toBeGreaterThanOrEqual(1);
    expect(value(out, '00080020')).toBe(shiftDate('20240315', days));
    const study = Date.parse(`${String(value(out, '00080020')).replace(/(\d{4})(\d{2})(\d{2})/, '$1-$2-$3')}`);
    const series = Date.parse(`${String(value(out, '00080021')).replace(/(\d{4})(\d{2})(\d{2})/, '$1-$2-$3')}`);
    expect((study - series) / 86_400_000).toBe(5);
    expect(value(out, '00080030')).toBe('101500');
    expect(value(out, '00280303')).toBe('MODIFIED');
    // the same patient in another instance moves by the same days
    expect(p.shiftDays({ ...PATIENT, '00080018': { vr: 'UI', Value: ['1.2.3'] } })).toBe(days);
    expect(value(out, '00100030')).toBeUndefined();
  });

  it('says REMOVED when no temporal option keeps the dates', () => {
    expect(value(d().apply(PATIENT), '00280303')).toBe('REMOVED');
  });

  it('Retain Device Identity keeps exactly the device attributes present', () => {
    expect(changed({}, { retainDeviceIdentity: true })).toEqual(['00081010', '00181000']);
  });

  it('Retain Institution Identity keeps exactly the institution name', () => {
    expect(changed({}, { retainInstitutionIdentity: true })).toEqual(['00080080']);
  });

  it('Retain Patient Characteristics keeps exactly sex, age and weight', () => {
    expect(changed({}, { retainPatientCharacteristics: true })).toEqual(['00100040', '00101010', '00101030']);
  });

  it('Retain UIDs keeps exactly the instance UIDs', () => {
    expect(changed({}, { retainUids: true })).toEqual(['00080018', '00081140', '0020000D', '0020000E', '00200052']);
  });

  it('Clean Graphics keeps the overlay comments cleaned and still removes the overlay bitmap', () => {
    expect(changed({}, { cleanGraphics: true })).toEqual(['60004000']);
    expect(value(d({ cleanGraphics: true }).apply(PATIENT), '60004000')).toBe('overlay by ***');
  });

  it('removes private attributes, and keeps only the safe list (with its creator) under Retain Safe Private', () => {
    expect(Object.keys(d().apply(PATIENT)).filter((t) => t.startsWith('0009'))).toEqual([]);
    const out = d({ retainSafePrivate: [{ creator: 'ACME 1.1', group: '0009', element: '12' }] }).apply(PATIENT);
    expect(Object.keys(out).filter((t) => t.startsWith('0009'))).toEqual(['00090010', '00091012']);
    const other = d({ retainSafePrivate: [{ creator: 'OTHER', group: '0009', element: '12' }] }).apply(PATIENT);
    expect(Object.keys(other).filter((t) => t.startsWith('0009'))).toEqual([]);
  });
});

describe('attributes the profile adds (PS3.15 E.1.1, E.3)', () => {
  it('sets Patient Identity Removed, the method and the CID 7050 codes of the options used', () => {
    const out = d({ cleanDescriptors: true, retainLongitudinal: 'modified' }).apply(PATIENT);
    expect(value(out, '00120062')).toBe('YES');
    expect(out['00120063'].Value).toEqual([
      'Cairn PS3.15 E.1.1 Basic Profile',
      'Retain Longitudinal Temporal Information Modified Dates Option',
      'Clean Descriptors Option',
    ]);
    const codes = out['00120064'].Value!.map((item) => value(item as DicomJson, '00080100'));
    expect(codes).toEqual(['113100', '113107', '113105']);
    expect(value(out['00120064'].Value![0] as DicomJson, '00080102')).toBe('DCM');
  });

  it('writes tags in ascending order', () => {
    const keys = Object.keys(d().apply(PATIENT));
    expect(keys).toEqual([...keys].sort());
  });

  it('leaves its input unchanged', () => {
    const before = JSON.stringify(PATIENT);
    d({ cleanDescriptors: true }).apply(PATIENT);
    expect(JSON.stringify(PATIENT)).toBe(before);
  });
});

describe('burned-in annotation', () => {
  it('withholds an instance that says YES, unless the profile allows it', () => {
    const attrs = { ...PATIENT, '00280301': { vr: 'CS', Value: ['YES'] } };
    expect(withheldReason(attrs, {})).toMatch(/Burned In Annotation is YES/);
    expect(withheldReason(attrs, { allowBurnedIn: true })).toBeUndefined();
  });

  it('withholds secondary capture and ultrasound without the attribute, serves them when it says NO', () => {
    const sc = { '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.7'] } };
    const us = { '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.6.1'] } };
    expect(withheldReason(sc, {})).toMatch(/commonly carries burned-in text/);
    expect(withheldReason(us, {})).toMatch(/commonly carries burned-in text/);
    expect(withheldReason({ ...us, '00280301': { vr: 'CS', Value: ['NO'] } }, {})).toBeUndefined();
    expect(withheldReason(PATIENT, {})).toBeUndefined();
  });
});

describe('shifted dates', () => {
  it('moves a calendar date back by whole days, across months, years and leap days', () => {
    expect(shiftDate('20240301', 1)).toBe('20240229');
    expect(shiftDate('20230101', 365)).toBe('20220101');
    expect(shiftDate('20240315', 0)).toBe('20240315');
  });

  it('reads years 0001–0099 as themselves, not as 1900–1999', () => {
    expect(shiftDate('00500315', 14)).toBe('00500301');
  });

  it('shows no date for a value that is no calendar date, or that would move before year 1', () => {
    for (const v of ['20230231', '20231301', '00000101', '2023-01-01', '202301']) expect(shiftDate(v, 10), v).toBeNull();
    expect(shiftDate('00010105', 10)).toBeNull();
  });

  it('says how a query key matches what each profile shows of it', () => {
    const modified = d({ retainLongitudinal: 'modified' });
    expect(modified.matchingOf('00080020')).toBe('shifted');
    expect(modified.matchingOf('00400244')).toBe('shifted');
    expect(modified.matchingOf('00080030')).toBe('stored');
    expect(modified.matchingOf('00100030')).toBe('none');
    expect(d({ retainLongitudinal: 'full' }).matchingOf('00080020')).toBe('stored');
    expect(d().matchingOf('00080020')).toBe('none');
    expect(d().matchingOf('00080060')).toBe('stored');
  });
});

describe('structured content', () => {
  const SR: DicomJson = {
    '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Quixote^Zebulon' }] },
    '00100020': { vr: 'LO', Value: ['MRN-77'] },
    '0040A730': {
      vr: 'SQ',
      Value: [
        {
          '0040A040': { vr: 'CS', Value: ['TEXT'] },
          '0040A043': { vr: 'SQ', Value: [{ '00080104': { vr: 'LO', Value: ['Finding'] } }] },
          '0040A160': { vr: 'UT', Value: ['Zebulon Quixote has no acute findings'] },
        },
      ],
    },
  };

  it('transcribes the Content Sequence row as PS3.15 Table E.1-1 gives it: D, and C under Clean Structured Content', () => {
    expect(TABLE_E1_1.find(([tag]) => tag === '0040A730')).toEqual(['0040A730', 'Content Sequence', 'D', '--------C-']);
  });

  it('replaces the free text of the Content Sequence by a dummy, item by item, under the Basic Profile (D)', () => {
    const [item] = d().apply(SR)['0040A730'].Value as DicomJson[];
    expect(item['0040A160'].Value).toEqual(['ANONYMIZED']);
    expect(item['0040A040'].Value).toEqual(['TEXT']);
    expect((item['0040A043'].Value as DicomJson[])[0]['00080104'].Value).toEqual(['Finding']);
  });

  it('cleans it item by item under the Clean Structured Content Option: free text loses every identifying value', () => {
    const [item] = d({ cleanStructuredContent: true }).apply(SR)['0040A730'].Value as DicomJson[];
    expect(item['0040A160'].Value).toEqual(['******* ******* has no acute findings']);
    expect(item['0040A040'].Value).toEqual(['TEXT']);
    expect((item['0040A043'].Value as DicomJson[])[0]['00080104'].Value).toEqual(['Finding']);
  });
});
