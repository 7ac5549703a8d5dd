import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFsBlobStore } from '../../server/blob/fs.js';
import { measureBlobStore } from '../../server/metrics/blob-store.js';
import { createMetrics, hexReason } from '../../server/metrics/metrics.js';
import { createTestArchive, multipartBody, type TestArchive } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';

// GET /metrics: Prometheus text of requests by route pattern, STOW outcomes
// by reason, bytes, blob store and audit timings, the database pool and the
// process (event-loop lag); for an administrator or the METRICS_TOKEN only.

const METRICS_TOKEN = 'metrics-token-for-prometheus-0123456789';

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive({ metricsToken: METRICS_TOKEN });
});
afterAll(async () => {
  await a?.close();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function samples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of one series (0 when absent), the labels given matching exactly those of the series that have them. */
function value(text: string, name: string, labels: Record<string, string> = {}): number {
  return samples(text)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

async function scrape(): Promise<string> {
  const res = await a.anonymous.get('/metrics').set('Authorization', `Bearer ${METRICS_TOKEN}`);
  expect(res.status).toBe(200);
  return res.text;
}

describe('who may read /metrics', () => {
  it('without credentials: 401 with a JSON body and a Bearer challenge', async () => {
    const res = await a.anonymous.get('/metrics');
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('AuthenticationRequired');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="cairn"/);
  });

  it('with a wrong static token: 401', async () => {
    const res = await a.anonymous.get('/metrics').set('Authorization', `Bearer ${METRICS_TOKEN}x`);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/invalid_token/);
  });

  it('a role other than admin: 403', async () => {
    for (const role of ['clinician', 'auditor', 'uploader'] as const) {
      const res = await a.as({ roles: [role] }).get('/metrics');
      expect(res.status, role).toBe(403);
      expect(res.body.error).toBe('Forbidden');
    }
  });

  it('an administrator: 200 in Prometheus text format', async () => {
    const res = await a.request.get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.text).toMatch(/^# HELP /m);
  });

  it('the METRICS_TOKEN, without any account: 200', async () => {
    expect(await scrape()).toContain('# TYPE cairn_http_requests_total counter');
  });

  it('a scrape is not audited', async () => {
    await scrape();
    expect(await a.deps.db('audit_events').where({ path: '/metrics' }).first()).toBeUndefined();
  });
});

describe('what /metrics says', () => {
  it('counts requests by the route pattern and status, never by the raw path with its UIDs', async () => {
    const inst = syntheticInstance();
    const { body, contentType } = multipartBody([inst.bytes]);
    expect((await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body)).status).toBe(200);
    const route = '/dicom-web/studies/:studyUid/metadata';
    const before = value(await scrape(), 'cairn_http_requests_total', { method: 'GET', route, status: '200' });
    for (let i = 0; i < 3; i++) expect((await a.request.get(`/dicom-web/studies/${inst.studyUid}/metadata`)).status).toBe(200);
    expect((await a.request.get('/dicom-web/studies/1.2.3.4/metadata')).status).toBe(404);
    const text = await scrape();
    expect(value(text, 'cairn_http_requests_total', { method: 'GET', route, status: '200' })).toBe(before + 3);
    expect(value(text, 'cairn_http_requests_total', { method: 'GET', route, status: '404' })).toBeGreaterThanOrEqual(1);
    expect(value(text, 'cairn_http_request_duration_seconds_count', { method: 'GET', route, status: '200' })).toBe(before + 3);
    expect(text).not.toContain(inst.studyUid);
    expect(text).not.toContain('1.2.3.4');
  });

  it('a path no route matches is labelled (unmatched)', async () => {
    const uid = '1.2.826.0.1.3680043.99.424242';
    expect((await a.request.get(`/dicom-web/studies/${uid}/no-such-resource`)).status).toBe(404);
    const text = await scrape();
    expect(value(text, 'cairn_http_requests_total', { route: '(unmatched)', status: '404' })).toBeGreaterThanOrEqual(1);
    expect(text).not.toContain(uid);
  });

  it('counts STOW instances stored and failed, by DICOM reason code', async () => {
    const before = await scrape();
    const good = syntheticInstance();
    const { body, contentType } = multipartBody([good.bytes, Buffer.from('not a DICOM file at all, just some bytes '.repeat(8))]);
    const res = await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body);
    expect(res.status).toBe(202);
    const reason = hexReason(res.body['00081198'].Value[0]['00081197'].Value[0]);
    const after = await scrape();
    const delta = (labels: Record<string, string>) => value(after, 'cairn_stow_instances_total', labels) - value(before, 'cairn_stow_instances_total', labels);
    expect(delta({ outcome: 'stored', reason: '0x0000' })).toBe(1);
    expect(delta({ outcome: 'failed', reason })).toBe(1);
    expect(reason).toMatch(/^0x[0-9A-F]{4}$/);
  });

  it('counts the bytes received and sent, by route pattern', async () => {
    const inst = syntheticInstance();
    const { body, contentType } = multipartBody([inst.bytes]);
    const before = await scrape();
    await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body);
    const res = await a.request.get(`/dicom-web/studies/${inst.studyUid}`).buffer(true);
    expect(res.status).toBe(200);
    const after = await scrape();
    const grew = (name: string, route: string) => value(after, name, { route }) - value(before, name, { route });
    expect(grew('cairn_http_received_bytes_total', '/dicom-web/studies')).toBeGreaterThanOrEqual(body.length);
    expect(grew('cairn_http_sent_bytes_total', '/dicom-web/studies/:studyUid')).toBeGreaterThanOrEqual(inst.bytes.length);
  });

  it('times blob store operations and audit writes, and shows the database pool and the event-loop lag', async () => {
    const inst = syntheticInstance();
    const { body, contentType } = multipartBody([inst.bytes]);
    const before = await scrape();
    await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body);
    const after = await scrape();
    const grew = (name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels);
    expect(grew('cairn_blob_operation_duration_seconds_count', { op: 'put' })).toBe(1);
    expect(grew('cairn_audit_write_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    for (const state of ['used', 'free', 'pending'])
      expect(samples(after).some((s) => s.name === 'cairn_db_pool_connections' && s.labels.state === state)).toBe(true);
    expect(value(after, 'cairn_db_pool_connections', { state: 'free' }) + value(after, 'cairn_db_pool_connections', { state: 'used' })).toBeGreaterThan(0);
    expect(samples(after).some((s) => s.name === 'nodejs_eventloop_lag_seconds')).toBe(true);
  });
});

describe('the measured blob store', () => {
  it('passes answers and errors through unchanged, counting failures by kind', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-metrics-blobs-'));
    try {
      const metrics = createMetrics();
      const blobs = measureBlobStore(createFsBlobStore(dir), metrics);
      expect(await blobs.put('a/b.dcm', Readable.from([Buffer.from('hello')]))).toEqual({ size: 5 });
      expect((await blobs.read('a/b.dcm', 5)).toString()).toBe('hello');
      await expect(blobs.read('a/missing.dcm', 5)).rejects.toMatchObject({ code: 'ENOENT' });
      const text = await metrics.registry.metrics();
      expect(value(text, 'cairn_blob_operation_duration_seconds_count', { op: 'put' })).toBe(1);
      expect(value(text, 'cairn_blob_operation_duration_seconds_count', { op: 'read' })).toBe(2);
      expect(value(text, 'cairn_blob_operation_errors_total', { op: 'read', kind: 'missing' })).toBe(1);
      expect(value(text, 'cairn_blob_operation_errors_total', { op: 'put' })).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
