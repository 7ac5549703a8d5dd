import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newCaller } from '../../server/access.js';
import { parseDeidViews } from '../../server/deid/settings.js';
import { type ExportRunner, type RunnerOptions, startExportRunner } from '../../server/export/runner.js';
import { binaryParser, createTestArchive, multipartBody, type TestArchive, type Who } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';

// Pushing studies to another DICOMweb archive: a second Cairn on a real
// HTTP server on 127.0.0.1 is the destination. Jobs run in batches, their
// progress is read back, and a job survives its runner being stopped or
// dying mid-way: another runner takes it over and sends only what is left.

const DEID = { key: 'a-test-deid-key-that-is-long-enough-0123', views: parseDeidViews('researcher=modified-dates;steward@trial=full-dates', undefined) };
const RESEARCHER: Who = { sub: 'res-1', roles: ['researcher'] };
const CLINICIAN: Who = { sub: 'dr-1', roles: ['clinician'] };
const FAST: RunnerOptions = { pollMs: 30, batchSize: 2, retrySeconds: 0.05, leaseSeconds: 30 };

let src: TestArchive;
let dst: TestArchive;
let server: http.Server;
let dstUrl: string;
/** STOW requests the destination received, and a hook run as each one arrives. */
let stows = 0;
let onStow: (() => void) | undefined;
/** How long the destination waits before it handles a STOW request. */
let stowDelayMs = 0;
const runners: ExportRunner[] = [];

function runner(options: RunnerOptions = {}): ExportRunner {
  const r = startExportRunner(src.deps, { ...FAST, ...options });
  runners.push(r);
  return r;
}

/** A study of `n` instances of one patient, stored at the source. */
async function storedStudy(n: number, extra: Record<string, unknown> = {}) {
  const first = syntheticInstance({ PatientName: 'Doe^Jane', PatientID: 'JD-7', BurnedInAnnotation: 'NO', ...extra });
  const rest = Array.from({ length: n - 1 }, (_, i) =>
    syntheticInstance({
      studyUid: first.studyUid,
      seriesUid: first.seriesUid,
      PatientName: 'Doe^Jane',
      PatientID: 'JD-7',
      BurnedInAnnotation: 'NO',
      InstanceNumber: String(i + 2),
      ...extra,
    }),
  );
  const all = [first, ...rest];
  const m = multipartBody(all.map((s) => s.bytes));
  expect((await src.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
  return { studyUid: first.studyUid, instances: all };
}

async function waitFor<T>(what: string, f: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const progress = async (id: string, who: Who = { sub: 'test-admin', roles: ['admin'] }) => (await src.as(who).get(`/api/exports/${id}`)).body;
const completed = (id: string) => waitFor(`export ${id}`, async () => ((await progress(id)).state === 'completed' ? progress(id) : undefined));

/** The SOP Instance UIDs the destination holds under a study. */
async function atDestination(studyUid: string): Promise<string[]> {
  const r = await dst.request.get(`/dicom-web/studies/${studyUid}/instances`).set('Accept', 'application/dicom+json');
  if (r.status !== 200) return [];
  return (JSON.parse(r.text || '[]') as Record<string, { Value: string[] }>[]).map((i) => i['00080018'].Value[0]).sort();
}

beforeAll(async () => {
  src = await createTestArchive({ deid: DEID });
  dst = await createTestArchive();
  const handle = dst.app.callback();
  server = http.createServer((req, res) => {
    if (req.method === 'POST' && req.url?.endsWith('/studies')) {
      stows++;
      onStow?.();
      if (stowDelayMs) return void setTimeout(() => handle(req, res), stowDelayMs);
    }
    handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  dstUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/dicom-web`;
  const r = await src.request.post('/api/export/destinations').send({ name: 'partner', url: dstUrl, token: dst.token({ sub: 'pusher', roles: ['uploader'] }) });
  expect(r.status).toBe(201);
});
afterEach(async () => {
  onStow = undefined;
  stowDelayMs = 0;
  await Promise.all(runners.splice(0).map((r) => r.stop()));
});
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await src?.close();
  await dst?.close();
});

describe('destinations', () => {
  it('are registered by an administrator and listed without their token', async () => {
    const r = await src.request.get('/api/export/destinations');
    expect(r.status).toBe(200);
    const partner = r.body.destinations.find((d: { name: string }) => d.name === 'partner');
    expect(partner).toMatchObject({ url: dstUrl, hasToken: true });
    expect(JSON.stringify(r.body)).not.toContain(dst.token({ sub: 'pusher', roles: ['uploader'] }).slice(-20));
  });

  it('show others their names only, and only an administrator may add one', async () => {
    const r = await src.as(CLINICIAN).get('/api/export/destinations');
    expect(r.body.destinations[0]).toEqual({ id: expect.any(String), name: 'partner' });
    expect((await src.as(CLINICIAN).post('/api/export/destinations').send({ name: 'x', url: dstUrl })).status).toBe(403);
  });

  it.each([
    ['a URL that is not http', { name: 'ftp', url: 'ftp://example.org/dicom-web' }],
    ['a URL with credentials', { name: 'creds', url: 'http://u:p@example.org/dicom-web' }],
    ['no URL', { name: 'none' }],
    ['a bad name', { name: '', url: dstUrl }],
    ['a token with spaces', { name: 'tok', url: dstUrl, token: 'a b' }],
  ])('are refused with 400 for %s', async (_label, body) => {
    const r = await src.request.post('/api/export/destinations').send(body);
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('InvalidDestination');
  });

  it('are refused with 409 for a name taken', async () => {
    expect((await src.request.post('/api/export/destinations').send({ name: 'partner', url: dstUrl })).status).toBe(409);
  });
});

describe('a push job', () => {
  it('sends every instance in batches and reports its progress', async () => {
    const s = await storedStudy(3);
    const r = await src
      .as(CLINICIAN)
      .post('/api/exports')
      .send({ destination: 'partner', studies: [s.studyUid] });
    expect(r.status).toBe(202);
    expect(r.headers.location).toBe(`/api/exports/${r.body.id}`);
    expect(r.body).toMatchObject({ state: 'queued', total: 3, done: 0, pending: 3, destination: { name: 'partner' } });
    const before = stows;
    runner();
    const p = await completed(r.body.id);
    expect(p).toMatchObject({ total: 3, done: 3, failed: 0, pending: 0, problems: [] });
    expect(stows - before).toBe(2);
    expect(await atDestination(s.studyUid)).toEqual(s.instances.map((i) => i.sopInstanceUid).sort());
  });

  it('is resumed by another runner after its runner stops mid-job, sending only what is left', async () => {
    const s = await storedStudy(6);
    const { body: job } = await src.request.post('/api/exports').send({ destination: 'partner', studies: [s.studyUid] });
    const before = stows;
    const first = runner({ owner: 'replica-1' });
    // The runner is told to stop while its first batch is on the wire: it finishes that batch and gives the job up.
    let stopped: Promise<void> | undefined;
    onStow = () => {
      onStow = undefined;
      stopped = first.stop();
    };
    await waitFor('the first batch', async () => (stopped ? true : undefined));
    await stopped;
    const half = await progress(job.id);
    expect(half).toMatchObject({ state: 'running', done: 2, pending: 4 });
    const row = await src.deps.db('export_jobs').where({ id: job.id }).first();
    expect(row.lease_owner).toBeNull();
    runner({ owner: 'replica-2' });
    expect(await completed(job.id)).toMatchObject({ done: 6, failed: 0 });
    expect(stows - before).toBe(3);
    expect(await atDestination(s.studyUid)).toEqual(s.instances.map((i) => i.sopInstanceUid).sort());
  });

  it('held by a runner that died is taken over once its lease runs out', async () => {
    const s = await storedStudy(2);
    const { body: job } = await src.request.post('/api/exports').send({ destination: 'partner', studies: [s.studyUid] });
    // A replica took the job and died without giving it up.
    await src.deps
      .db('export_jobs')
      .where({ id: job.id })
      .update({ state: 'running', lease_owner: 'dead-replica', lease_until: src.deps.db.raw("now() + interval '1.5 seconds'") });
    runner({ owner: 'survivor' });
    await new Promise((r) => setTimeout(r, 500));
    expect((await progress(job.id)).done).toBe(0);
    expect(await completed(job.id)).toMatchObject({ done: 2 });
  });

  it('is taken by one runner of two at a time: no batch is sent twice', async () => {
    const s = await storedStudy(4);
    const { body: job } = await src.request.post('/api/exports').send({ destination: 'partner', studies: [s.studyUid] });
    const before = stows;
    runner({ owner: 'a' });
    runner({ owner: 'b' });
    expect(await completed(job.id)).toMatchObject({ done: 4 });
    expect(stows - before).toBe(2);
  });

  it('keeps its lease through a batch slower than the lease: no other runner takes the job meanwhile', async () => {
    const s = await storedStudy(2);
    const { body: job } = await src.request.post('/api/exports').send({ destination: 'partner', studies: [s.studyUid] });
    const before = stows;
    stowDelayMs = 2500;
    let arrived = false;
    onStow = () => {
      arrived = true;
    };
    runner({ owner: 'slow', leaseSeconds: 1 });
    await waitFor('the batch', async () => (arrived ? true : undefined));
    runner({ owner: 'eager', leaseSeconds: 1 });
    expect(await completed(job.id)).toMatchObject({ done: 2 });
    expect(stows - before).toBe(1);
  });

  it('whose destination was removed completes with its instances failed, saying why', async () => {
    const d = await src.request.post('/api/export/destinations').send({ name: 'short-lived', url: dstUrl });
    const s = await storedStudy(1);
    const { body: job } = await src.request.post('/api/exports').send({ destination: 'short-lived', studies: [s.studyUid] });
    expect((await src.request.delete(`/api/export/destinations/${d.body.id}`)).status).toBe(204);
    runner();
    const p = await completed(job.id);
    expect(p).toMatchObject({ failed: 1, error: 'the destination "short-lived" was removed' });
  });

  it('fails its instances with the reason after the destination stayed unreachable', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const d = await src.request.post('/api/export/destinations').send({ name: 'gone', url: `http://127.0.0.1:${port}/dicom-web` });
    const s = await storedStudy(1);
    const { body: job } = await src.request.post('/api/exports').send({ destination: d.body.id, studies: [s.studyUid] });
    runner({ maxAttempts: 2 });
    const p = await completed(job.id);
    expect(p).toMatchObject({ done: 0, failed: 1 });
    expect(p.problems[0].reason).toContain('could not be reached');
    const item = await src.deps.db('export_items').where({ job_id: job.id }).first();
    expect(item.attempts).toBe(2);
  });

  it('is cancelled by its owner, and a runner then sends nothing', async () => {
    const s = await storedStudy(1);
    const { body: job } = await src
      .as(CLINICIAN)
      .post('/api/exports')
      .send({ destination: 'partner', studies: [s.studyUid] });
    const r = await src.as(CLINICIAN).delete(`/api/exports/${job.id}`);
    expect(r.status).toBe(200);
    expect(r.body.state).toBe('cancelled');
    const before = stows;
    runner();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(stows).toBe(before);
    expect((await src.as(CLINICIAN).delete(`/api/exports/${job.id}`)).status).toBe(409);
  });

  it("is shown to its owner and administrators only: another caller's job is 404", async () => {
    const s = await storedStudy(1);
    const { body: job } = await src
      .as(CLINICIAN)
      .post('/api/exports')
      .send({ destination: 'partner', studies: [s.studyUid] });
    expect((await src.as({ sub: 'dr-2', roles: ['clinician'] }).get(`/api/exports/${job.id}`)).status).toBe(404);
    expect((await src.as(CLINICIAN).get(`/api/exports/${job.id}`)).status).toBe(200);
    expect((await src.as(CLINICIAN).get('/api/exports')).body.exports.map((e: { id: string }) => e.id)).toContain(job.id);
    expect((await src.as({ sub: 'dr-2', roles: ['clinician'] }).get('/api/exports')).body.exports).toEqual([]);
    await src.as(CLINICIAN).delete(`/api/exports/${job.id}`);
  });

  it('records each exported instance in its provenance, with the destination', async () => {
    const s = await storedStudy(1);
    const { body: job } = await src.request.post('/api/exports').send({ destination: 'partner', studies: [s.studyUid] });
    runner();
    await completed(job.id);
    const p = await src.as({ roles: ['auditor'] }).get(`/api/instances/${s.instances[0].sopInstanceUid}/provenance`);
    const event = p.body.events.find((e: { action: string; outcome: string }) => e.action === 'export' && e.outcome === 'success');
    expect(event).toMatchObject({
      sub: 'test-admin',
      scope: 'instance',
      command: `export job ${job.id}`,
      export: { format: 'stow', job: job.id, destination: { name: 'partner' } },
    });
  });
});

describe('starting a push job', () => {
  it('is 404 for a study hidden from the caller', async () => {
    const s = await storedStudy(1);
    await src.request.put(`/api/studies/${s.studyUid}/labels`).send({ labels: ['vip'] });
    const r = await src
      .as(CLINICIAN)
      .post('/api/exports')
      .send({ destination: 'partner', studies: [s.studyUid] });
    expect(r.status).toBe(404);
    expect(r.body.error).toBe('StudyNotFound');
  });

  it.each([
    ['no destination', { studies: ['1.2.3'] }, 'InvalidExport'],
    ['a destination not registered', { destination: 'nowhere', studies: ['1.2.3'] }, 'UnknownDestination'],
    ['a profile not configured', { destination: 'partner', studies: ['1.2.3'], profile: 'nobody' }, 'UnknownProfile'],
    ['nothing to export', { destination: 'partner' }, 'InvalidExportTargets'],
  ])('is 400 for %s', async (_label, body, error) => {
    const r = await src.as(CLINICIAN).post('/api/exports').send(body);
    expect(r.status).toBe(400);
    expect(r.body.error).toBe(error);
  });

  it('is refused without credentials and to a role that may not retrieve', async () => {
    expect((await src.anonymous.post('/api/exports').send({ destination: 'partner' })).status).toBe(401);
    expect(
      (
        await src
          .as({ roles: ['uploader'] })
          .post('/api/exports')
          .send({ destination: 'partner' })
      ).status,
    ).toBe(403);
  });
});

describe('a de-identified push', () => {
  const viewOf = (role: string) =>
    src.deps.research!.viewOf(newCaller({ sub: 'x', roles: [role as 'researcher'], clearances: [] }, { protocol: 'cli', command: 'test' }))!;

  it('sends the instances de-identified by the profile named: the destination holds no original identifier', async () => {
    const s = await storedStudy(2);
    const withheld = syntheticInstance({ studyUid: s.studyUid, PatientName: 'Doe^Jane', PatientID: 'JD-7' });
    const m = multipartBody([withheld.bytes]);
    await src.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body);
    const r = await src.request.post('/api/exports').send({ destination: 'partner', studies: [s.studyUid], profile: 'steward' });
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ total: 3, pending: 2, withheld: 1, profile: 'steward' });
    runner();
    const p = await completed(r.body.id);
    expect(p).toMatchObject({ done: 2, withheld: 1 });
    const d = viewOf('steward').deidentifier;
    expect(p.problems).toEqual([{ sentUid: d.uid(withheld.sopInstanceUid), state: 'withheld', reason: expect.stringContaining('burned-in') }]);
    expect(await atDestination(s.studyUid)).toEqual([]);
    const pseudoStudy = d.uid(s.studyUid);
    expect(await atDestination(pseudoStudy)).toEqual(s.instances.map((i) => d.uid(i.sopInstanceUid)).sort());
    const meta = await dst.request.get(`/dicom-web/studies/${pseudoStudy}/metadata`).buffer(true).parse(binaryParser);
    for (const v of ['Doe^Jane', 'JD-7', s.studyUid, s.instances[0].seriesUid, s.instances[0].sopInstanceUid]) expect(meta.body.toString()).not.toContain(v);
  });

  it("goes through a researcher's own view, whatever it asks, and names items by their pseudonyms", async () => {
    const s = await storedStudy(1);
    const d = viewOf('researcher').deidentifier;
    await src.as(RESEARCHER).get('/dicom-web/studies').set('Accept', 'application/dicom+json');
    expect(
      (
        await src
          .as(RESEARCHER)
          .post('/api/exports')
          .send({ destination: 'partner', studies: [d.uid(s.studyUid)], profile: 'steward' })
      ).status,
    ).toBe(403);
    expect(
      (
        await src
          .as(RESEARCHER)
          .post('/api/exports')
          .send({ destination: 'partner', studies: [s.studyUid] })
      ).status,
    ).toBe(404);
    const r = await src
      .as(RESEARCHER)
      .post('/api/exports')
      .send({ destination: 'partner', studies: [d.uid(s.studyUid)] });
    expect(r.status).toBe(202);
    expect(r.body.profile).toBe('researcher');
    runner();
    const p = await completed(r.body.id);
    expect(p.done).toBe(1);
    expect(JSON.stringify(p)).not.toContain(s.instances[0].sopInstanceUid);
    expect(await atDestination(d.uid(s.studyUid))).toEqual([d.uid(s.instances[0].sopInstanceUid)]);
  });
});
