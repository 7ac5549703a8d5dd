import type { Knex } from 'knex';
import { attributesText } from '../server/db/build-rows.js';
import { dicomJsonText, type DicomJson } from '../server/dicom/json.js';
import { ambiguousVrTags } from '../server/dicom/tags.js';
import { resolveJsonVrs, resolveVr } from '../server/dicom/vr.js';

// Stored DICOM JSON written before Cairn resolved the registry's VR choices
// holds "vr" values that are not VRs: "ox" on the Pixel Data of Implicit VR
// instances, "xs", "lt" or "up" on elements an explicit encoding sent as UN.
// Strict clients refuse a whole metadata response for one of them. And in
// Implicit VR instances, "US or SS" values were read as US whatever Pixel
// Representation said, LUT Data and directory offsets as UN.
//
// The rows are fixed here, once, rather than on the way out: /metadata and
// QIDO splice the stored text without parsing it (DESIGN.md), and resolving
// VRs on every read would mean parsing every response. Only rows that need it
// are read: the regular expressions below find them in SQL.
const IMPLICIT_VR_LE = '1.2.840.10008.1.2';
// A "vr" that is not two capital letters (JSON.stringify and jsonb text, which puts a space after the colon).
const NOT_A_VR = `"vr": ?"(?![A-Z]{2}")`;
const BATCH = 200;

export async function up(knex: Knex): Promise<void> {
  // Elements whose VR depends on the data set, by tag: in Implicit VR rows only these can be wrong.
  const ambiguous = `"(${ambiguousVrTags()
    .map((t) => (t.startsWith('6000') ? `60[0-1][0-9A-F]${t.slice(4)}` : t))
    .join('|')})":`;
  let after = '';
  for (;;) {
    const rows: { sop_instance_uid: string; transfer_syntax_uid: string; metadata: string; bulk: Record<string, { vr: string }> }[] = await knex('instances')
      .select('sop_instance_uid', 'transfer_syntax_uid', 'metadata', 'bulk')
      .where('sop_instance_uid', '>', after)
      .andWhere((q) =>
        q
          .whereRaw('metadata ~ ?', [NOT_A_VR])
          .orWhereRaw('bulk::text ~ ?', [NOT_A_VR])
          .orWhere((w) => w.where('transfer_syntax_uid', IMPLICIT_VR_LE).andWhereRaw('metadata ~ ?', [ambiguous])),
      )
      .orderBy('sop_instance_uid')
      .limit(BATCH);
    if (!rows.length) break;
    for (const row of rows) {
      // Only the Implicit VR reading of a data set left a bulk data VR that is
      // not a VR, so such a row was read as Implicit VR whatever its label.
      const badBulk = Object.entries(row.bulk).filter(([, b]) => !/^[A-Z]{2}$/.test(b.vr));
      const implicit = row.transfer_syntax_uid === IMPLICIT_VR_LE || badBulk.length > 0;
      for (const [tag, b] of badBulk) b.vr = resolveVr(tag, b.vr, { implicit: true, littleEndian: true });
      const metadata = JSON.parse(row.metadata) as DicomJson;
      const changed = resolveJsonVrs(metadata, { implicit, littleEndian: true });
      if (!changed && !badBulk.length) continue;
      await knex('instances')
        .where('sop_instance_uid', row.sop_instance_uid)
        .update({ metadata: dicomJsonText(metadata), bulk: JSON.stringify(row.bulk) });
    }
    after = rows[rows.length - 1].sop_instance_uid;
  }
  for (const { table, key } of [
    { table: 'studies', key: 'study_uid' },
    { table: 'series', key: 'series_uid' },
  ]) {
    let last = '';
    for (;;) {
      const rows: Record<string, unknown>[] = await knex(table)
        .select(key, 'attributes')
        .where(key, '>', last)
        .andWhereRaw('attributes_text ~ ?', [NOT_A_VR])
        .orderBy(key)
        .limit(BATCH);
      if (!rows.length) break;
      for (const row of rows) {
        const attributes = row.attributes as DicomJson;
        resolveJsonVrs(attributes, { implicit: false, littleEndian: true });
        await knex(table)
          .where(key, row[key] as string)
          .update({ attributes: JSON.stringify(attributes), attributes_text: attributesText(attributes) });
      }
      last = String(rows[rows.length - 1][key]);
    }
  }
}

/** The old values were not VRs; there is nothing to go back to. */
export async function down(): Promise<void> {}
