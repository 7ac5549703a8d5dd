// Minimal fetch-backed XMLHttpRequest, installed on globalThis only when Node has none.
// dicomweb-client (a browser library) needs it; this avoids adding an npm dependency
// (the usual package for this would be `xhr2`).
type Handler = ((ev?: unknown) => void) | null;

class FetchXHR {
  readyState = 0;
  status = 0;
  statusText = '';
  responseType = '';
  response: unknown = null;
  responseText = '';
  withCredentials = false;
  onreadystatechange: Handler = null;
  onloadstart: Handler = null;
  onloadend: Handler = null;
  onprogress: Handler = null;
  onerror: Handler = null;
  private method = 'GET';
  private url = '';
  private reqHeaders: Record<string, string> = {};
  private resHeaders = new Headers();

  open(method: string, url: string): void {
    this.method = method.toUpperCase();
    this.url = url;
    this.readyState = 1;
  }
  setRequestHeader(k: string, v: string): void {
    this.reqHeaders[k] = v;
  }
  getResponseHeader(k: string): string | null {
    return this.resHeaders.get(k);
  }
  getAllResponseHeaders(): string {
    let s = '';
    this.resHeaders.forEach((v, k) => {
      s += `${k}: ${v}\r\n`;
    });
    return s;
  }
  send(data?: ArrayBuffer | Uint8Array | string | null): void {
    this.onloadstart?.();
    const body = data == null ? undefined : typeof data === 'string' ? data : new Uint8Array(data);
    fetch(this.url, { method: this.method, headers: this.reqHeaders, body, signal: AbortSignal.timeout(20_000) })
      .then(async (r) => {
        const buf = await r.arrayBuffer();
        this.status = r.status;
        this.statusText = r.statusText;
        this.resHeaders = r.headers;
        const text = () => new TextDecoder().decode(buf);
        if (this.responseType === 'arraybuffer') this.response = buf;
        else if (this.responseType === 'json') {
          try {
            this.response = buf.byteLength ? JSON.parse(text()) : null;
          } catch {
            this.response = null;
          }
        } else {
          this.responseText = text();
          this.response = this.responseText;
        }
      })
      .catch(() => {
        this.status = 0;
        this.onerror?.();
      })
      .finally(() => {
        this.readyState = 4;
        this.onreadystatechange?.();
        this.onloadend?.();
      });
  }
  abort(): void {}
}

export function installXhr(): void {
  const g = globalThis as { XMLHttpRequest?: unknown };
  if (typeof g.XMLHttpRequest === 'undefined') g.XMLHttpRequest = FetchXHR;
}
