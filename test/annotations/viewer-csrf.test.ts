import { describe, expect, it } from 'vitest';
import { ohifAppConfigScript } from '../../viewer/app-config.js';

// The bundled viewer saves a reader's measurement report with STOW-RS
// through OHIF's DICOMweb client (XMLHttpRequest), which sends no CSRF
// header: the generated app-config.js adds the session's token to this
// origin's state-changing requests, and to nothing else.

const ORIGIN = 'https://cairn.example.org';

/** A stand-in for the browser's XMLHttpRequest that records what was opened and which headers were set. */
class FakeXhr {
  opened: [string, string] | undefined;
  headers: Record<string, string> = {};
  sent = false;
  open(method: string, url: string): void {
    this.opened = [method, url];
  }
  setRequestHeader(name: string, value: string): void {
    this.headers[name] = value;
  }
  send(): void {
    this.sent = true;
  }
}

function browserWith(cookie: string): typeof FakeXhr {
  const Xhr = class extends FakeXhr {};
  const window = { location: { href: `${ORIGIN}/viewer?StudyInstanceUIDs=1.2.3`, origin: ORIGIN } };
  new Function('window', 'document', 'XMLHttpRequest', ohifAppConfigScript(ORIGIN))(window, { cookie }, Xhr);
  return Xhr;
}

function request(Xhr: typeof FakeXhr, method: string, url: string): FakeXhr {
  const xhr = new Xhr();
  xhr.open(method, url);
  xhr.send();
  return xhr;
}

describe('the viewer script', () => {
  it("sends the session's CSRF token with a STOW-RS request to this origin", () => {
    const Xhr = browserWith('other=1; cairn_csrf=tok%2Ben; x=2');
    const xhr = request(Xhr, 'POST', `${ORIGIN}/dicom-web/studies/1.2.3`);
    expect(xhr.sent).toBe(true);
    expect(xhr.opened).toEqual(['POST', `${ORIGIN}/dicom-web/studies/1.2.3`]);
    expect(xhr.headers['X-CSRF-Token']).toBe('tok+en');
  });

  it('sends it with a relative URL of this origin too', () => {
    const xhr = request(browserWith('cairn_csrf=abc'), 'post', '/dicom-web/studies');
    expect(xhr.headers['X-CSRF-Token']).toBe('abc');
  });

  it('does not send it with reads', () => {
    const Xhr = browserWith('cairn_csrf=abc');
    for (const method of ['GET', 'HEAD', 'OPTIONS']) expect(request(Xhr, method, `${ORIGIN}/dicom-web/studies`).headers, method).toEqual({});
  });

  it('never sends it to another origin', () => {
    const xhr = request(browserWith('cairn_csrf=abc'), 'POST', 'https://elsewhere.example.com/dicom-web/studies');
    expect(xhr.headers).toEqual({});
  });

  it('sends nothing without a session (a bearer token or AUTH=off)', () => {
    const xhr = request(browserWith(''), 'POST', `${ORIGIN}/dicom-web/studies`);
    expect(xhr.headers).toEqual({});
    expect(xhr.sent).toBe(true);
  });
});
