import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/config.js';
import { parseDeidViews } from '../../server/deid/settings.js';

describe('DEID_VIEWS', () => {
  it('gives the researcher role the Basic Profile with modified dates by default', () => {
    expect(loadConfig({}).deid.views).toEqual([{ role: 'researcher', project: 'researcher', options: { retainLongitudinal: 'modified' } }]);
  });

  it('reads a project and several options per role', () => {
    expect(parseDeidViews('researcher@trial-7=full-dates,retain-patient-characteristics; steward=basic', undefined)).toEqual([
      { role: 'researcher', project: 'trial-7', options: { retainLongitudinal: 'full', retainPatientCharacteristics: true } },
      { role: 'steward', project: 'steward', options: {} },
    ]);
  });

  it('reads the safe private list for retain-safe-private', () => {
    const [v] = parseDeidViews('researcher=retain-safe-private', '0019,0c,SIEMENS MR HEADER');
    expect(v.options.retainSafePrivate).toEqual([{ group: '0019', element: '0C', creator: 'SIEMENS MR HEADER' }]);
  });

  it('stops the start on an unknown option, naming it', () => {
    expect(() => loadConfig({ DEID_VIEWS: 'researcher=keep-names' })).toThrow(/invalid configuration: DEID_VIEWS: unknown option "keep-names"/);
  });

  it('refuses both date options, a role twice, an even private group and a short key', () => {
    expect(() => parseDeidViews('researcher=full-dates,modified-dates', undefined)).toThrow(/both/);
    expect(() => parseDeidViews('researcher=basic;researcher=full-dates', undefined)).toThrow(/two views/);
    expect(() => parseDeidViews('researcher=retain-safe-private', '0018,0c,X')).toThrow(/odd group/);
    expect(() => loadConfig({ DEID_KEY: 'short' })).toThrow(/DEID_KEY/);
  });

  it('can be empty: no role is de-identified', () => {
    expect(loadConfig({ DEID_VIEWS: '' }).deid.views).toEqual([]);
  });
});
