import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeAgent, request, setDefaultHeaders } from '../bench/client.js';
import { checkReply, TO_EXPLICIT_LE, transcodePhase } from '../bench/transcode.js';
import { createTestArchive, type TestArchive } from './helpers.js';

// The bench's transcoding figure (bench/transcode.ts): JPEG 2000 lossless
// instances built with Cairn's codec, stored, and retrieved as Explicit VR LE;
// only replies of that syntax and about the decoded size count, and a server
// that cannot transcode is n/a when it is not the bench's own Cairn.

let a: TestArchive;
let server: Server;
let base: string;
const ROWS = 64;
const decoded = ROWS * ROWS * 2;
const log = (): void => undefined;

/** A server on loopback with the given handler; its DICOMweb base URL. */
async function listen(handler: http.RequestListener): Promise<{ server: Server; base: string }> {
  const s = http.createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { server: s, base: `http://127.0.0.1:${(s.address() as AddressInfo).port}/dicom-web` };
}

beforeAll(async () => {
  a = await createTestArchive();
  ({ server, base } = await listen(a.app.callback()));
  setDefaultHeaders({ Authorization: `Bearer ${a.token({ roles: ['admin'] })}` });
});
afterAll(async () => {
  closeAgent();
  await new Promise((r) => server?.close(r));
  await a?.close();
});

describe('the bench transcode phase', () => {
  it('stores J2K lossless instances and counts every retrieve Cairn transcodes to Explicit VR LE', async () => {
    const r = await transcodePhase(base, 3, ROWS, 2, false, log, 2);
    expect(r.firstError).toBeUndefined();
    expect(r).toMatchObject({ status: 'ok', instances: 3, requests: 6, correct: 6, errors: 0, decodedBytes: decoded });
    expect(r.j2kBytes).toBeLessThan(decoded);
    expect(r.mbPerSec).toBeGreaterThan(0);
    expect(r.rounds).toHaveLength(2);
  });

  it('refuses a reply with the stored JPEG 2000 bytes, an error, or a part of the wrong size', async () => {
    const r = await transcodePhase(base, 1, ROWS, 1, false, log, 1);
    expect(r.status).toBe('ok');
    const qido = await a.request.get('/dicom-web/instances').query({ limit: 1000 }).set('Accept', 'application/dicom+json');
    // Every instance of this archive was stored by the phase, as JPEG 2000 lossless.
    const j2k = (qido.body as Record<string, { Value: string[] }>[])[0];
    const url = `${base}/studies/${j2k['0020000D'].Value[0]}/series/${j2k['0020000E'].Value[0]}/instances/${j2k['00080018'].Value[0]}`;
    const asStored = await request('GET', url, { Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' }, undefined, true);
    expect(checkReply(asStored, decoded)).toMatch(/untranscoded/);
    const native = await request('GET', url, { Accept: TO_EXPLICIT_LE }, undefined, true);
    expect(checkReply(native, decoded)).toBeNull();
    expect(checkReply(native, 512 * 512 * 2)).toMatch(/expected about 524288/);
    expect(checkReply({ status: 406, bytes: 0, ms: 0, body: Buffer.from('{"error":"no such representation"}') }, decoded)).toBe(
      'HTTP 406 no such representation',
    );
  });

  it('is n/a for another server that cannot transcode, and failed for the Cairn the bench started', async () => {
    const other = await listen((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.method === 'POST') res.writeHead(200, { 'Content-Type': 'application/dicom+json' }).end('{}');
        else res.writeHead(500, { 'Content-Type': 'application/json' }).end('{"Message": "Error encountered within the plugin engine"}');
      });
    });
    try {
      const external = await transcodePhase(other.base, 2, ROWS, 1, true, log, 1);
      expect(external).toMatchObject({ status: 'n/a', instances: 2, correct: 0 });
      expect(external.reason).toBe('HTTP 500 Error encountered within the plugin engine');
      const own = await transcodePhase(other.base, 2, ROWS, 1, false, log, 1);
      expect(own.status).toBe('failed');
      expect(own.reason).toBeUndefined();
    } finally {
      await new Promise((r) => other.server.close(r));
    }
  });
});
