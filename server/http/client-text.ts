import { ApiError } from '../errors.js';

// Text a client sends that Cairn hands on to PostgreSQL (query parameters, a
// user name) is checked first: PostgreSQL refuses a NUL in text outright, and
// no attribute value, user name or filter needs a control character or bytes
// that are not UTF-8. Such input is the client's mistake, a 400 naming the
// parameter, never a database error.

// Unicode category Cc: C0 controls, DEL and C1 controls. A matching value
// needs none: of the control characters PS3.5 §6.1.3 allows only ESC (for
// ISO 2022, which a UTF-8 query string does not use) and the line and page
// breaks of the long text VRs, which are never matching keys.
const CONTROL = /\p{Cc}/u;
// A UTF-16 surrogate without its pair: not a character, and not encodable as UTF-8.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function controlProblem(value: string): string | undefined {
  const c = CONTROL.exec(value);
  return c ? `contains the control character U+${c[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}` : undefined;
}

/**
 * Why a string decoded by a lenient decoder (koa's query, URLSearchParams,
 * JSON.parse) cannot be used as text, or undefined when it can. Such a
 * decoder turns bytes that are not UTF-8 into U+FFFD, and JSON may carry a
 * lone surrogate.
 */
export function textProblem(value: string): string | undefined {
  return controlProblem(value) ?? (value.includes('\uFFFD') || LONE_SURROGATE.test(value) ? 'is not valid UTF-8' : undefined);
}

/** Throws a 400 `code` naming `what` when `value` cannot be used as text. */
export function checkText(what: string, value: string, code = 'InvalidQuery'): void {
  const problem = textProblem(value);
  if (problem) throw new ApiError(400, code, `${what} ${problem}`);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The name/value pairs of a query string, decoded as URLSearchParams does
 * (WHATWG application/x-www-form-urlencoded: `+` is a space, `%XX` a byte, a
 * `%` without two hex digits itself), except that bytes that are not UTF-8,
 * and control characters, are a 400 naming the parameter instead of being
 * replaced or passed on.
 */
export function queryPairs(querystring: string): [string, string][] {
  const out: [string, string][] = [];
  for (const pair of querystring.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const rawName = eq < 0 ? pair : pair.slice(0, eq);
    const name = decodeComponent(rawName, () => `query parameter "${rawName}"`);
    const value = eq < 0 ? '' : decodeComponent(pair.slice(eq + 1), () => `query parameter ${name}`);
    out.push([name, value]);
  }
  return out;
}

function decodeComponent(raw: string, what: () => string): string {
  const plus = raw.replace(/\+/g, ' ');
  let text: string;
  if (!plus.includes('%')) text = plus;
  else {
    const bytes = Buffer.from(plus, 'utf8');
    const out = Buffer.allocUnsafe(bytes.length);
    let n = 0;
    for (let i = 0; i < bytes.length; i++) {
      const hi = bytes[i] === 0x25 && i + 2 < bytes.length ? hexValue(bytes[i + 1]) : -1;
      const lo = hi >= 0 ? hexValue(bytes[i + 2]) : -1;
      if (lo >= 0) {
        out[n++] = hi * 16 + lo;
        i += 2;
      } else out[n++] = bytes[i];
    }
    try {
      text = UTF8.decode(out.subarray(0, n));
    } catch {
      throw new ApiError(400, 'InvalidQuery', `${what()} is not valid UTF-8`);
    }
  }
  // Decoded strictly, so a U+FFFD here was sent as such: only controls are refused.
  const problem = controlProblem(text);
  if (problem) throw new ApiError(400, 'InvalidQuery', `${what()} ${problem}`);
  return text;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}
