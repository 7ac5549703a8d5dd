import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCaller } from '../../server/access.js';
import { Deidentifier } from '../../server/deid/profile.js';
import { searchQuery } from '../../server/db/search.js';
import { Tag } from '../../server/dicom/tags.js';
import { createTestArchive, type TestArchive } from '../helpers.js';

// The index computes each patient's date shift in SQL (server/db/search.ts)
// the way the view computes it in TypeScript (Deidentifier.shiftDays): the
// two must agree for every patient, or a shifted-date query would miss.

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive();
});
afterAll(async () => {
  await a?.close();
});

describe('the date shift in SQL', () => {
  it('is the shift the view applies, for patients known by ID, by name alone, and with non-ASCII text', async () => {
    const patients: [string | null, string | null][] = [
      ['PAT-A', 'Alpha^Ann'],
      ['1CT1', null],
      ['', 'Nameonly^Nora'],
      [null, 'Müller^Jörg=山田^太郎'],
      [null, null],
      ['Ünïcødé-ID', 'x'],
      ...Array.from({ length: 40 }, (_, i) => [`ID-${i * 7919}`, null] as [string, null]),
    ];
    for (const key of [Buffer.from('project-one-key-0123456789abcdef'), Buffer.alloc(80, 7)]) {
      const d = new Deidentifier(key, { retainLongitudinal: 'modified' });
      const k = d.shiftKey();
      // The shift expression of a shifted-date match, alone: the stored date 9999-12-31 minus the shift, over literal patient rows.
      const caller = newCaller({ sub: 'r', roles: ['researcher'], clearances: [] }, { protocol: 'cli', command: 'test' });
      const sql = searchQuery(a.deps.db, caller, {
        level: 'study',
        matches: [{ tag: Tag.StudyDate, cond: { op: 'shifted', key: k } }],
        scope: {},
        limit: 1,
        offset: 0,
        load: { study: false, studyCounts: false, series: false, seriesCount: false, metadata: false },
      }).toSQL().sql;
      const shiftSql = /- (\(1 \+ .*?::int)/s.exec(sql)?.[1] ?? '';
      expect(shiftSql).toContain('sha256');
      for (const [id, name] of patients) {
        const attrs: Record<string, { vr: string; Value?: unknown[] }> = {};
        if (id !== null) attrs['00100020'] = { vr: 'LO', Value: [id] };
        if (name !== null) {
          const [alphabetic, ideographic] = name.split('=');
          attrs['00100010'] = { vr: 'PN', Value: [{ Alphabetic: alphabetic, ...(ideographic ? { Ideographic: ideographic } : {}) }] };
        }
        const { rows } = await a.deps.db.raw(
          `select ${shiftSql.replaceAll('"', '')} as days from (select ?::text as patient_id, ?::text as patient_name) as s`,
          [k.outer, k.inner, k.span, id, name],
        );
        expect(rows[0].days, `${id} / ${name}`).toBe(d.shiftDays(attrs));
      }
    }
  });
});
