import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ohifAppConfig } from '../viewer/app-config.js';
import { createTestArchive, type TestArchive } from './helpers.js';

// A stand-in for OHIF's dist: the serving rules do not depend on its content.
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-viewer-test-'));
const dist = path.join(work, 'dist');
const INDEX = '<!doctype html><html><head><script src="/app-config.js"></script></head><body><div id="root"></div></body></html>';
const BUNDLE = `console.log(${JSON.stringify('x'.repeat(5000))});`;
fs.mkdirSync(path.join(dist, 'assets'), { recursive: true });
fs.writeFileSync(path.join(dist, 'index.html'), INDEX);
fs.writeFileSync(path.join(dist, 'app.bundle.0f6159c501addfe9.js'), BUNDLE);
fs.writeFileSync(path.join(dist, 'app.bundle.css'), 'body{}');
fs.writeFileSync(path.join(dist, '.cairn-ohif.json'), '{"version":"test"}');
fs.writeFileSync(path.join(work, 'secret.txt'), 'SECRET outside the dist folder');
fs.symlinkSync(path.join(work, 'secret.txt'), path.join(dist, 'assets', 'link.txt'));

let a: TestArchive;
let server: http.Server;
let port: number;

beforeAll(async () => {
  a = await createTestArchive({ viewerDir: dist });
  server = a.app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await a?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

/** A GET with the path exactly as written (supertest would normalise `..` away). */
function rawGet(rawPath: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: rawPath, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('viewer static files', () => {
  it('serves the index page at / with cross-origin isolation and no-cache', async () => {
    const res = await a.request.get('/');
    expect(res.status).toBe(200);
    expect(res.type).toBe('text/html');
    expect(res.text).toBe(INDEX);
    expect(res.headers['cross-origin-opener-policy']).toBe('same-origin');
    expect(res.headers['cross-origin-embedder-policy']).toBe('require-corp');
    expect(res.headers['cache-control']).toBe('no-cache');
  });

  it('falls back to the index page for OHIF routes', async () => {
    const res = await a.request.get('/viewer?StudyInstanceUIDs=1.2.3');
    expect(res.status).toBe(200);
    expect(res.text).toBe(INDEX);
    expect(res.headers['cross-origin-embedder-policy']).toBe('require-corp');
  });

  it('serves hashed assets as immutable for a year', async () => {
    const res = await a.request.get('/app.bundle.0f6159c501addfe9.js');
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/javascript/);
    expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
  });

  it('has unhashed files revalidated', async () => {
    const res = await a.request.get('/app.bundle.css');
    expect(res.headers['cache-control']).toBe('no-cache');
  });

  it('compresses with gzip or brotli as the client accepts', async () => {
    const gz = await rawGet('/app.bundle.0f6159c501addfe9.js', { 'Accept-Encoding': 'gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    const br = await rawGet('/app.bundle.0f6159c501addfe9.js', { 'Accept-Encoding': 'br, gzip' });
    expect(br.headers['content-encoding']).toBe('br');
    const none = await rawGet('/app.bundle.0f6159c501addfe9.js');
    expect(none.headers['content-encoding']).toBeUndefined();
    expect(none.body).toBe(BUNDLE);
  });

  it('answers HEAD with the headers and no body', async () => {
    const res = await a.request.head('/app.bundle.css');
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe('6');
    expect(res.headers['cross-origin-opener-policy']).toBe('same-origin');
  });

  it('answers a matching validator with 304', async () => {
    const first = await a.request.get('/app.bundle.css');
    const again = await a.request.get('/app.bundle.css').set('If-None-Match', first.headers.etag);
    expect(again.status).toBe(304);
  });

  it.each(['/../secret.txt', '/%2e%2e/secret.txt', '/assets/%2E%2E/%2e%2e/secret.txt', '/..%2fsecret.txt', '/..%5csecret.txt', '/assets/..%2F..%2Fsecret.txt'])(
    'refuses the escaping path %s',
    async (p) => {
      const res = await rawGet(p);
      expect(res.status).toBe(400);
      expect(res.body).not.toContain('SECRET');
    },
  );

  it('does not follow a symlink out of the dist folder', async () => {
    const res = await rawGet('/assets/link.txt');
    expect(res.body).not.toContain('SECRET');
    expect(res.body).toBe(INDEX);
  });

  it('does not serve hidden files', async () => {
    const res = await a.request.get('/.cairn-ohif.json');
    expect(res.text).toBe(INDEX);
  });

  it.each(['/dicom-web/nothing-here', '/api/anything', '/auth/x'])('leaves %s to the other routers', async (p) => {
    const res = await a.request.get(p);
    expect(res.status).toBe(404);
    expect(res.text).not.toBe(INDEX);
  });

  it.each(['/healthz', '/readyz'])('leaves %s to the health probes', async (p) => {
    const res = await a.request.get(p);
    expect(res.status).toBe(200);
    expect(res.type).toBe('application/json');
  });

  it('leaves /login to the login page', async () => {
    const res = await a.anonymous.get('/login');
    expect(res.text).not.toBe(INDEX);
    expect(res.text).toContain('/auth/login');
  });

  it('does not answer other methods with the index page', async () => {
    const res = await a.request.post('/viewer');
    expect(res.status).toBe(404);
  });

  it('says the viewer is not installed when its folder is missing', async () => {
    const b = await createTestArchive({ viewerDir: path.join(work, 'missing') });
    try {
      const res = await b.request.get('/');
      expect(res.status).toBe(503);
      expect(res.body.message).toMatch(/fetch-viewer/);
    } finally {
      await b.close();
    }
  });
});

function configFrom(script: string): ReturnType<typeof ohifAppConfig> & Record<string, any> {
  const window: Record<string, any> = {};
  new Function('window', script)(window);
  return window.config;
}

describe('viewer app-config.js', () => {
  it('points the data source at this server', async () => {
    const res = await a.request.get('/app-config.js').set('Host', 'cairn.local:8042');
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/javascript/);
    expect(res.headers['cache-control']).toBe('no-cache');
    const ds = configFrom(res.text).dataSources[0];
    expect(ds.namespace).toBe('@ohif/extension-default.dataSourcesModule.dicomweb');
    expect(ds.configuration.qidoRoot).toBe('http://cairn.local:8042/dicom-web');
    expect(ds.configuration.wadoRoot).toBe('http://cairn.local:8042/dicom-web');
  });

  it('states only what Cairn implements', async () => {
    const c = configFrom((await a.request.get('/app-config.js')).text).dataSources[0].configuration;
    expect(c).toMatchObject({
      imageRendering: 'wadors',
      thumbnailRendering: 'thumbnailDirect',
      supportsFuzzyMatching: false,
      supportsWildcard: true,
      supportsReject: false,
      staticWado: false,
      qidoSupportsIncludeField: true,
      bulkDataURI: { enabled: true },
    });
    expect(c.wadoUriRoot).toBeUndefined();
  });

  it('turns off the first-run dialogs', async () => {
    const config = configFrom((await a.request.get('/app-config.js')).text);
    expect(config.investigationalUseDialog).toEqual({ option: 'never' });
    expect(config.customizationService['ohif.tours']).toEqual({ $set: [] });
  });

  it('ignores X-Forwarded-* unless the proxy is trusted', async () => {
    const res = await a.request.get('/app-config.js').set('Host', 'inner:8042').set('X-Forwarded-Proto', 'https').set('X-Forwarded-Host', 'pacs.example.org');
    expect(configFrom(res.text).dataSources[0].configuration.qidoRoot).toBe('http://inner:8042/dicom-web');
  });

  it('follows X-Forwarded-Proto and X-Forwarded-Host behind a trusted proxy', async () => {
    const b = await createTestArchive({ viewerDir: dist, trustProxy: true });
    try {
      const res = await b.request.get('/app-config.js').set('Host', 'inner:8042').set('X-Forwarded-Proto', 'https').set('X-Forwarded-Host', 'pacs.example.org');
      expect(configFrom(res.text).dataSources[0].configuration.qidoRoot).toBe('https://pacs.example.org/dicom-web');
    } finally {
      await b.close();
    }
  });

  it('uses PUBLIC_URL when it is set', async () => {
    const b = await createTestArchive({ viewerDir: dist, publicUrl: 'https://images.example.org' });
    try {
      const res = await b.request.get('/app-config.js').set('X-Forwarded-Host', 'elsewhere');
      expect(configFrom(res.text).dataSources[0].configuration.qidoRoot).toBe('https://images.example.org/dicom-web');
    } finally {
      await b.close();
    }
  });
});
