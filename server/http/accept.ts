import { parseMediaType, splitOutsideQuotes, type MediaType } from './multipart.js';

export interface Acceptable {
  /** multipart/related when the client asked for a multipart payload. */
  multipart: boolean;
  /** The media type of the parts (or of the body when not multipart); '*\/*' when any. */
  type: string;
  /** The transfer-syntax parameter, when given ('*' accepts any). */
  transferSyntax?: string;
  q: number;
}

/**
 * Parses an Accept header into acceptable media types by descending q
 * (RFC 9110 §12.5.1, PS3.18 §8.7.5). A missing header accepts anything.
 */
export function parseAccept(header: string | undefined): Acceptable[] {
  if (!header?.trim()) return [{ multipart: true, type: '*/*', q: 1 }];
  const out: Acceptable[] = [];
  for (const raw of splitOutsideQuotes(header, ',')) {
    if (!raw.trim()) continue;
    const mt: MediaType = parseMediaType(raw);
    const q = mt.params.q !== undefined ? Number(mt.params.q) : 1;
    if (!(q > 0)) continue;
    if (mt.type === 'multipart/related') {
      out.push({ multipart: true, type: (mt.params.type ?? '*/*').toLowerCase(), transferSyntax: mt.params['transfer-syntax'], q });
    } else if (mt.type === '*/*' || mt.type === 'multipart/*') {
      out.push({ multipart: true, type: '*/*', transferSyntax: mt.params['transfer-syntax'], q });
    } else {
      out.push({ multipart: false, type: mt.type, transferSyntax: mt.params['transfer-syntax'], q });
    }
  }
  return out.sort((a, b) => b.q - a.q);
}

/** Does an acceptable entry's type cover `type`? */
export function typeMatches(accepted: string, type: string): boolean {
  if (accepted === '*/*' || accepted === type) return true;
  return accepted.endsWith('/*') && type.startsWith(accepted.slice(0, -1));
}
