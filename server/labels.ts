import { z } from 'zod';
import { LABEL_PATTERN } from './access.js';
import type { DicomJson } from './dicom/json.js';
import { resolveAttribute } from './dicom/tags.js';

// Sensitivity labels applied at ingest, from rules in configuration
// (LABEL_RULES or LABEL_RULES_FILE, see README). A rule names a label, the
// level it goes on, and conditions on the instance's top-level attributes,
// all of which must hold: a list of values (any of them, exact; a person
// name by its Alphabetic group) or "present" (the attribute has a value).
//
//   [{ "label": "photo", "level": "series", "when": { "Modality": ["XC", "GM"] } },
//    { "label": "vip", "when": { "PatientID": ["123456"] } },
//    { "label": "confidential", "when": { "ConfidentialityConstraintOnPatientDataDescription": "present" } }]
//
// Labels only ever grow at ingest (a later instance adds its labels to its
// study and series); removing one is the admin label API's work.

export interface LabelRule {
  label: string;
  level: 'study' | 'series';
  when: { tag: string; test: 'present' | string[] }[];
}

const ruleSchema = z.object({
  label: z.string().regex(LABEL_PATTERN, 'a label is 1-64 letters, digits, "_", ".", ":" or "-"'),
  level: z.enum(['study', 'series']).default('study'),
  when: z
    .record(z.string(), z.union([z.literal('present'), z.array(z.string()).min(1)]))
    .refine((w) => Object.keys(w).length > 0, 'a rule needs at least one condition'),
});

/** Parses and checks rules; throws with a message naming the bad rule. */
export function parseLabelRules(text: string): LabelRule[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`label rules are not JSON: ${(err as Error).message}`);
  }
  const parsed = z.array(ruleSchema).safeParse(json);
  if (!parsed.success) throw new Error(`label rules: ${parsed.error.issues.map((i) => `[${i.path.join('.')}] ${i.message}`).join('; ')}`);
  return parsed.data.map((r, i) => ({
    label: r.label,
    level: r.level,
    when: Object.entries(r.when).map(([key, test]) => {
      const attr = resolveAttribute(key);
      if (!attr) throw new Error(`label rules: [${i}.when] "${key}" is neither a DICOM keyword nor an 8-digit tag`);
      return { tag: attr.tag, test };
    }),
  }));
}

function values(dataset: DicomJson, tag: string): string[] {
  return (dataset[tag]?.Value ?? []).flatMap((v) => {
    if (v === null || v === undefined) return [];
    if (typeof v === 'object') {
      const alphabetic = (v as { Alphabetic?: unknown }).Alphabetic;
      return typeof alphabetic === 'string' ? [alphabetic] : ['(item)'];
    }
    return [String(v)];
  });
}

/** The labels the rules give an instance, for its study and its series, sorted and distinct. */
export function labelsFor(rules: readonly LabelRule[], dataset: DicomJson): { study: string[]; series: string[] } {
  const study = new Set<string>();
  const series = new Set<string>();
  for (const rule of rules) {
    const holds = rule.when.every(({ tag, test }) => {
      const vs = values(dataset, tag).filter((v) => v !== '');
      return test === 'present' ? vs.length > 0 : vs.some((v) => test.includes(v.trim()));
    });
    if (holds) (rule.level === 'study' ? study : series).add(rule.label);
  }
  return { study: [...study].sort(), series: [...series].sort() };
}
