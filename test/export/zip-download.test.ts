import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCaller } from '../../server/access.js';
import { parseDeidViews } from '../../server/deid/settings.js';
import { binaryParser, createTestArchive, multipartBody, parseMultipart, sample, type TestArchive, type Who } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';

// The export download: a zip of Part-10 files with their DICOMDIR (PS3.10
// §8), opened here with Info-ZIP unzip and read with DCMTK's dcmdump, as a
// user of the export would; scoped to what the caller sees, de-identified
// for a caller of a de-identified view, audited.

const CT = {
  study: '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322',
  series: '1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322',
  instance: '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322',
};
const RESEARCHER: Who = { sub: 'res-1', roles: ['researcher'] };
const CLINICIAN: Who = { sub: 'dr-1', roles: ['clinician'] };
const DEID = { key: 'a-test-deid-key-that-is-long-enough-0123', views: parseDeidViews('researcher=modified-dates', undefined) };

// One study of three instances in two series; a labelled (hidden) study; an instance a de-identified view withholds.
const JANE = { PatientName: 'Doe^Jane', PatientID: 'JD-7' };
const study = syntheticInstance({ ...JANE, BurnedInAnnotation: 'NO', SeriesNumber: '3' });
const sameSeries = syntheticInstance({ ...JANE, studyUid: study.studyUid, seriesUid: study.seriesUid, BurnedInAnnotation: 'NO', InstanceNumber: '2' });
const otherSeries = syntheticInstance({ ...JANE, studyUid: study.studyUid, BurnedInAnnotation: 'NO', SeriesNumber: '4' });
const withheld = syntheticInstance({ ...JANE, studyUid: study.studyUid });
const hidden = syntheticInstance({ BurnedInAnnotation: 'NO' });

let a: TestArchive;
let work: string;

const zipOf = (who: Who, url: string) => a.as(who).get(url).buffer(true).parse(binaryParser);
const postZip = (who: Who, body: unknown) =>
  a
    .as(who)
    .post('/api/export/zip')
    .send(body as object)
    .buffer(true)
    .parse(binaryParser);

/** Unzips into a fresh folder with Info-ZIP, after testing the archive; the folder. */
function unzip(bytes: Buffer): string {
  const dir = fs.mkdtempSync(path.join(work, 'z-'));
  fs.writeFileSync(path.join(dir, 'export.zip'), bytes);
  execFileSync('unzip', ['-tq', 'export.zip'], { cwd: dir });
  execFileSync('unzip', ['-q', 'export.zip', '-d', 'out'], { cwd: dir });
  return path.join(dir, 'out');
}

function filesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

const dcmdump = (file: string) => execFileSync('dcmdump', ['-q', file], { encoding: 'utf8' });

/** The Referenced File IDs of the DICOMDIR, as DCMTK reads them, with forward slashes. */
function referenced(dir: string): string[] {
  return [...dcmdump(path.join(dir, 'DICOMDIR')).matchAll(/\(0004,1500\) CS \[([^\]]*)\]/g)].map((m) => m[1].replaceAll('\\', '/'));
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-export-'));
  a = await createTestArchive({ deid: DEID });
  const m = multipartBody([sample('CT_small.dcm'), study.bytes, sameSeries.bytes, otherSeries.bytes, withheld.bytes, hidden.bytes]);
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
  expect((await a.request.put(`/api/studies/${hidden.studyUid}/labels`).send({ labels: ['vip'] })).status).toBe(200);
});
afterAll(async () => {
  await a?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('zip of a study', () => {
  it('opens with unzip, and every file and the DICOMDIR read with dcmdump', async () => {
    const r = await zipOf(CLINICIAN, `/api/export/studies/${study.studyUid}.zip`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/zip');
    expect(r.headers['content-disposition']).toBe(`attachment; filename="${study.studyUid}.zip"`);
    const dir = unzip(r.body);
    const files = filesUnder(dir).sort();
    expect(files).toContain('DICOMDIR');
    expect(files).toHaveLength(5);
    for (const f of files) expect(dcmdump(path.join(dir, f))).toContain('(0002,0010)');
  });

  it('holds each instance byte for byte as stored, under File IDs of at most 8 upper-case characters per component', async () => {
    const dir = unzip((await zipOf(CLINICIAN, `/api/export/studies/${study.studyUid}.zip`)).body);
    const files = filesUnder(dir).filter((f) => f !== 'DICOMDIR');
    for (const f of files) for (const c of f.split(path.sep)) expect(c).toMatch(/^[A-Z0-9_]{1,8}$/);
    const contents = files.map((f) => fs.readFileSync(path.join(dir, f)));
    for (const s of [study, sameSeries, otherSeries, withheld]) expect(contents.some((c) => c.equals(s.bytes))).toBe(true);
  });

  it('has a DICOMDIR that lists every file, once, with the patient, study and series records above them', async () => {
    const dir = unzip((await zipOf(CLINICIAN, `/api/export/studies/${study.studyUid}.zip`)).body);
    const files = filesUnder(dir)
      .filter((f) => f !== 'DICOMDIR')
      .map((f) => f.split(path.sep).join('/'));
    expect(referenced(dir).sort()).toEqual(files.sort());
    const dump = dcmdump(path.join(dir, 'DICOMDIR'));
    expect(dump).toContain('MediaStorageDirectoryStorage');
    expect(dump.match(/\(0004,1430\) CS \[PATIENT\]/g)).toHaveLength(1);
    expect(dump.match(/\(0004,1430\) CS \[STUDY\]/g)).toHaveLength(1);
    expect(dump.match(/\(0004,1430\) CS \[SERIES\]/g)).toHaveLength(3);
    expect(dump.match(/\(0004,1430\) CS \[IMAGE\]/g)).toHaveLength(4);
    for (const s of [study, sameSeries, otherSeries, withheld]) expect(dump).toContain(`(0004,1511) UI [${s.sopInstanceUid}]`);
    expect(dump).toContain('(0010,0020) LO [JD-7]');
  });

  it('links each record to the next of its level and to the first below it, by their offsets in the file', async () => {
    const dir = unzip((await zipOf(CLINICIAN, `/api/export/studies/${study.studyUid}.zip`)).body);
    const dump = dcmdump(path.join(dir, 'DICOMDIR'));
    // dcmdump prints each record's offset as it found it, and the offsets the records hold.
    const at = [...dump.matchAll(/# {2}offset=\$(\d+)/g)].map((m) => Number(m[1]));
    const pointers = [...dump.matchAll(/\(0004,14[02]0\) up (\d+)/g)].map((m) => Number(m[1])).filter((n) => n !== 0);
    const roots = [...dump.matchAll(/\(0004,120[02]\) up (\d+)/g)].map((m) => Number(m[1]));
    expect(at).toHaveLength(9);
    expect(pointers.length).toBeGreaterThan(0);
    for (const p of [...pointers, ...roots]) expect(at).toContain(p);
  });

  it('is 404 for a study the caller may not see, as for one that does not exist', async () => {
    const r = await zipOf(CLINICIAN, `/api/export/studies/${hidden.studyUid}.zip`);
    expect(r.status).toBe(404);
    expect(JSON.parse(r.body.toString()).error).toBe('StudyNotFound');
    expect((await zipOf(CLINICIAN, '/api/export/studies/1.2.3.4.5.zip')).status).toBe(404);
  });

  it('is refused without credentials (401) and to a role that may not retrieve (403)', async () => {
    expect((await a.anonymous.get(`/api/export/studies/${study.studyUid}.zip`)).status).toBe(401);
    expect((await zipOf({ roles: ['uploader'] }, `/api/export/studies/${study.studyUid}.zip`)).status).toBe(403);
  });

  it('is 400 for a study UID that is not a UID', async () => {
    expect((await zipOf(CLINICIAN, '/api/export/studies/not-a-uid.zip')).status).toBe(400);
  });

  it('is audited as an export naming every exported instance', async () => {
    await zipOf({ sub: 'dr-audit', roles: ['clinician'] }, `/api/export/studies/${study.studyUid}.zip`);
    const events = (await a.request.get('/api/audit?user=dr-audit&action=export')).body.events;
    expect(events).toHaveLength(1);
    expect(events[0].instance_uids.sort()).toEqual([study, sameSeries, otherSeries, withheld].map((s) => s.sopInstanceUid).sort());
    expect(events[0].detail.export).toMatchObject({ format: 'zip', files: 4 });
  });
});

describe('a zip the client leaves mid-way', () => {
  it('closes every blob stream it opened, the one read ahead included', async () => {
    // Instances larger than 4 MiB are streamed from the blob store rather than read whole.
    const big = syntheticInstance({ rows: 2100, columns: 2100, BurnedInAnnotation: 'NO' });
    const more = [1, 2].map(() => syntheticInstance({ studyUid: big.studyUid, rows: 2100, columns: 2100, BurnedInAnnotation: 'NO' }));
    const m = multipartBody([big.bytes, ...more.map((x) => x.bytes)]);
    expect((await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
    const opened: Readable[] = [];
    const get = a.deps.blobs.get.bind(a.deps.blobs);
    a.deps.blobs.get = async (key, range) => {
      const s = await get(key, range);
      opened.push(s);
      return s;
    };
    const server = a.app.listen(0, '127.0.0.1');
    try {
      await new Promise((r) => server.once('listening', r));
      const port = (server.address() as AddressInfo).port;
      await new Promise<void>((resolve, reject) => {
        const req = http.get(
          `http://127.0.0.1:${port}/api/export/studies/${big.studyUid}.zip`,
          { headers: { Authorization: `Bearer ${a.token(CLINICIAN)}` } },
          (res) => {
            res.once('data', () => {
              req.destroy();
              resolve();
            });
          },
        );
        req.on('error', reject);
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(opened.length).toBeGreaterThanOrEqual(2);
      for (const s of opened) expect(s.destroyed).toBe(true);
    } finally {
      a.deps.blobs.get = get;
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('zip of a selection (POST)', () => {
  it('holds the studies and series named, each instance once, with one DICOMDIR for all', async () => {
    const r = await postZip(CLINICIAN, { studies: [CT.study], series: [{ studyUid: study.studyUid, seriesUid: study.seriesUid }, study.seriesUid] });
    expect(r.status).toBe(200);
    const dir = unzip(r.body);
    const refs = referenced(dir);
    expect(refs).toHaveLength(3);
    const dump = dcmdump(path.join(dir, 'DICOMDIR'));
    for (const uid of [CT.instance, study.sopInstanceUid, sameSeries.sopInstanceUid]) expect(dump).toContain(uid);
    expect(dump).not.toContain(otherSeries.sopInstanceUid);
    expect(dump.match(/\(0004,1430\) CS \[PATIENT\]/g)).toHaveLength(2);
  });

  it('takes an HTML form, a series named by its UID alone', async () => {
    const r = await a.as(CLINICIAN).post('/api/export/zip').type('form').send({ series: otherSeries.seriesUid }).buffer(true).parse(binaryParser);
    expect(r.status).toBe(200);
    expect(referenced(unzip(r.body))).toHaveLength(1);
  });

  it('is 404 when one of the studies is hidden from the caller', async () => {
    const r = await postZip(CLINICIAN, { studies: [study.studyUid, hidden.studyUid] });
    expect(r.status).toBe(404);
    expect(JSON.parse(r.body.toString()).message).toContain(hidden.studyUid);
  });

  it.each([
    ['nothing named', {}],
    ['a study that is not a UID', { studies: ['x y'] }],
    ['a list that is not a list', { studies: 5 }],
    ['a series entry of the wrong shape', { series: [{ seriesUid: 7 }] }],
  ])('is 400 for %s, saying what is wrong', async (_label, body) => {
    const r = await postZip(CLINICIAN, body);
    expect(r.status).toBe(400);
    const answer = JSON.parse(r.body.toString());
    expect(answer.error).toBe('InvalidExportTargets');
    expect(answer.message).toBeTruthy();
  });

  it('is 415 for a body that is neither JSON nor a form', async () => {
    const r = await a.as(CLINICIAN).post('/api/export/zip').set('Content-Type', 'text/plain').send('studies');
    expect(r.status).toBe(415);
  });
});

describe('zip for a caller of a de-identified view', () => {
  const view = () => a.deps.research!.viewOf(newCaller({ sub: 'x', roles: ['researcher'], clearances: [] }, { protocol: 'cli', command: 'test' }))!;
  const pseudo = (uid: string) => view().deidentifier.uid(uid);

  it('is asked for by the pseudonymous study UID; the original UID finds nothing', async () => {
    // The researcher is shown the study first, as a QIDO search would show it.
    await a.as(RESEARCHER).get('/dicom-web/studies').set('Accept', 'application/dicom+json');
    expect((await zipOf(RESEARCHER, `/api/export/studies/${pseudo(study.studyUid)}.zip`)).status).toBe(200);
    expect((await zipOf(RESEARCHER, `/api/export/studies/${study.studyUid}.zip`)).status).toBe(404);
  });

  it('holds the same bytes WADO-RS sends that caller, leaves out what the view withholds and says so', async () => {
    await a.as(RESEARCHER).get('/dicom-web/studies').set('Accept', 'application/dicom+json');
    const r = await zipOf(RESEARCHER, `/api/export/studies/${pseudo(study.studyUid)}.zip`);
    expect(r.status).toBe(200);
    expect(r.headers.warning).toContain('1 instance(s) withheld');
    const dir = unzip(r.body);
    const files = filesUnder(dir).filter((f) => f !== 'DICOMDIR');
    expect(files).toHaveLength(3);
    const w = await a
      .as(RESEARCHER)
      .get(`/dicom-web/studies/${pseudo(study.studyUid)}`)
      .set('Accept', 'multipart/related; type="application/dicom"; transfer-syntax=*')
      .buffer(true)
      .parse(binaryParser);
    const wado = parseMultipart(w.body, w.headers['content-type']).map((p) => p.body);
    expect(wado).toHaveLength(3);
    for (const f of files) expect(wado.some((b) => b.equals(fs.readFileSync(path.join(dir, f))))).toBe(true);
  });

  it('shows no original identifier in any byte of the zip, and its DICOMDIR names the pseudonymous UIDs', async () => {
    await a.as(RESEARCHER).get('/dicom-web/studies').set('Accept', 'application/dicom+json');
    const r = await zipOf(RESEARCHER, `/api/export/studies/${pseudo(study.studyUid)}.zip`);
    const bytes = r.body.toString('latin1');
    for (const v of ['Doe^Jane', 'JD-7', study.studyUid, study.seriesUid, study.sopInstanceUid, otherSeries.seriesUid]) expect(bytes).not.toContain(v);
    const dump = dcmdump(path.join(unzip(r.body), 'DICOMDIR'));
    expect(dump).toContain(`(0004,1511) UI [${pseudo(study.sopInstanceUid)}]`);
    expect(dump).toContain(`(0020,000d) UI [${pseudo(study.studyUid)}]`);
  });

  it('writes the pseudonyms it shows, so the caller can name them next', async () => {
    // A series the researcher was never shown by QIDO, only by the zip.
    const r = await postZip(RESEARCHER, { studies: [pseudo(study.studyUid)] });
    expect(r.status).toBe(200);
    const m = await a.as(RESEARCHER).get(`/dicom-web/studies/${pseudo(study.studyUid)}/series/${pseudo(otherSeries.seriesUid)}/metadata`);
    expect(m.status).toBe(200);
  });

  it('answers 403 when the view withholds everything named, naming the instance by its pseudonym', async () => {
    await a
      .as(RESEARCHER)
      .get(`/dicom-web/studies/${pseudo(study.studyUid)}/series`)
      .set('Accept', 'application/dicom+json');
    const r = await postZip(RESEARCHER, { series: [`${pseudo(study.studyUid)}/${pseudo(withheld.seriesUid)}`] });
    expect(r.status).toBe(403);
    const message = JSON.parse(r.body.toString()).message as string;
    expect(message).toContain(pseudo(withheld.sopInstanceUid));
    expect(message).not.toContain(withheld.sopInstanceUid);
  });

  it('audits the instances that left and not the withheld one', async () => {
    await a
      .as({ sub: 'res-audit', roles: ['researcher'] })
      .get('/dicom-web/studies')
      .set('Accept', 'application/dicom+json');
    await zipOf({ sub: 'res-audit', roles: ['researcher'] }, `/api/export/studies/${pseudo(study.studyUid)}.zip`);
    const [event] = (await a.request.get('/api/audit?user=res-audit&action=export')).body.events;
    expect(event.instance_uids).toHaveLength(3);
    expect(event.instance_uids).not.toContain(withheld.sopInstanceUid);
    expect(event.detail.export).toMatchObject({ withheld: 1, project: 'researcher' });
  });
});
