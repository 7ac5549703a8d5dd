// The bundled viewer's study list keeps its filter in its URL (OHIF's
// WorkList: patientName, mrn, startDate, endDate, description, modalities,
// accession). The steward page turns that filter into the QIDO-RS query
// OHIF itself sends for it, so a collection made "from the current study
// list" holds what the list showed: names, IDs, descriptions and accession
// numbers match anywhere in the value (OHIF wraps them in `*`), dates as a
// range (PS3.4 §C.2.2.2.5), modalities as a list (§C.2.2.2.2).

const WILDCARDED: readonly [string, string][] = [
  ['patientName', 'PatientName'],
  ['mrn', 'PatientID'],
  ['description', 'StudyDescription'],
  ['accession', 'AccessionNumber'],
];

/** The QIDO-RS query string for a study list filter given as its URL's query parameters. */
export function qidoQueryOf(filter: Record<string, string | string[] | undefined>): string {
  const one = (name: string) => {
    const v = filter[name];
    const s = (Array.isArray(v) ? v[0] : v)?.trim();
    return s ? s : undefined;
  };
  const pairs: [string, string][] = [];
  for (const [param, key] of WILDCARDED) {
    const v = one(param);
    // A value that already holds a wildcard is taken as written.
    if (v) pairs.push([key, /[*?]/.test(v) ? v : `*${v}*`]);
  }
  const from = one('startDate')?.replace(/-/g, '');
  const to = one('endDate')?.replace(/-/g, '');
  if (from || to) pairs.push(['StudyDate', `${from ?? ''}-${to ?? ''}`]);
  const modalities = one('modalities');
  if (modalities)
    pairs.push([
      'ModalitiesInStudy',
      modalities
        .split(/[,\\/]/)
        .filter(Boolean)
        .join(','),
    ]);
  return pairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
}
