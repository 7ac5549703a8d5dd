import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import supertest from 'supertest';
import { hashPassword } from '../../server/auth/passwords.js';
import { saveUser } from '../../server/db/users.js';
import { createTestArchive, sample, type TestArchive } from '../helpers.js';

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive();
});
afterAll(async () => {
  await a?.close();
});

async function blobCount(): Promise<number> {
  let n = 0;
  for await (const _ of a.deps.blobs.list('instances/')) n++;
  return n;
}

/** form-data keeps a folder path only as `filepath` (superagent's types know just filename). */
const withPath = (filepath: string) => ({ filepath }) as { filename?: string };

const CT_STUDY = '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322';

describe('POST /upload', () => {
  it('stores a DICOM file and names its study', async () => {
    const res = await a.request.post('/upload').attach('file', sample('CT_small.dcm'), withPath('scans/CT_small.dcm'));
    expect(res.status).toBe(200);
    expect(res.body.files).toEqual([{ name: 'scans/CT_small.dcm', status: 'stored', studyUid: CT_STUDY }]);
    const qido = await a.request.get(`/dicom-web/studies?StudyInstanceUID=${CT_STUDY}`);
    expect(qido.body).toHaveLength(1);
  });

  it('reports the same file again as a duplicate, without a second copy', async () => {
    const before = await blobCount();
    const res = await a.request.post('/upload').attach('file', sample('CT_small.dcm'), 'CT_small.dcm');
    expect(res.body.files).toEqual([{ name: 'CT_small.dcm', status: 'duplicate', studyUid: CT_STUDY }]);
    expect(await blobCount()).toBe(before);
  });

  it('rejects a file that is not DICOM with the reason, and stores nothing', async () => {
    const before = await blobCount();
    const res = await a.request.post('/upload').attach('file', Buffer.from('# just a note\n'.repeat(100)), 'README.md');
    expect(res.status).toBe(200);
    expect(res.body.files).toHaveLength(1);
    expect(res.body.files[0]).toMatchObject({ name: 'README.md', status: 'rejected', code: '0xC000' });
    expect(res.body.files[0].reason).toMatch(/DICOM/i);
    expect(await blobCount()).toBe(before);
  });

  it('answers every file of a form in order, a rejected one before a stored one included', async () => {
    const res = await a.request
      .post('/upload')
      .attach('file', Buffer.alloc(300_000, 7), 'noise.bin')
      .attach('file', sample('MR_small.dcm'), 'MR_small.dcm')
      .attach('file', sample('JPEG2000.dcm'), 'JPEG2000.dcm');
    expect(res.status).toBe(200);
    expect(res.body.files.map((f: { name: string; status: string }) => [f.name, f.status])).toEqual([
      ['noise.bin', 'rejected'],
      ['MR_small.dcm', 'stored'],
      ['JPEG2000.dcm', 'stored'],
    ]);
  });

  it('keeps UTF-8 file names', async () => {
    const res = await a.request.post('/upload').attach('file', Buffer.from('x'), withPath('Ünterlagen/bild.txt'));
    expect(res.body.files[0].name).toBe('Ünterlagen/bild.txt');
  });

  it('refuses a form without files', async () => {
    const res = await a.request.post('/upload').field('note', 'nothing attached');
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('NoFiles');
  });

  it('refuses a body that is not multipart/form-data', async () => {
    const res = await a.request.post('/upload').set('Content-Type', 'application/dicom').send(sample('CT_small.dcm'));
    expect(res.status).toBe(415);
  });

  it('refuses files in another field', async () => {
    const res = await a.request.post('/upload').attach('other', sample('CT_small.dcm'), 'CT_small.dcm');
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('MalformedUpload');
  });
});

describe('who may upload', () => {
  it('refuses a request without credentials', async () => {
    const res = await a.anonymous.post('/upload').attach('file', sample('CT_small.dcm'), 'CT_small.dcm');
    expect(res.status).toBe(401);
  });

  it('refuses a role that may not store', async () => {
    const res = await a
      .as({ roles: ['researcher'] })
      .post('/upload')
      .attach('file', sample('CT_small.dcm'), 'CT_small.dcm');
    expect(res.status).toBe(403);
  });

  it('takes an uploader', async () => {
    const res = await a
      .as({ roles: ['uploader'] })
      .post('/upload')
      .attach('file', sample('SC_rgb_jpeg.dcm'), 'SC_rgb_jpeg.dcm');
    expect(res.status).toBe(200);
    expect(res.body.files[0].status).toBe('stored');
  });

  it('needs the CSRF token with a session cookie, as the page sends it', async () => {
    await saveUser(a.deps.db, { username: 'up-page', password_hash: await hashPassword('a long password', 4), roles: ['uploader'], clearances: [] });
    const browser = supertest.agent(a.app.callback());
    const login = await browser.post('/auth/login').send({ username: 'up-page', password: 'a long password' });
    expect(login.status).toBe(200);
    const without = await browser.post('/upload').attach('file', sample('chrGerm.dcm'), 'chrGerm.dcm');
    expect(without.status).toBe(403);
    const withToken = await browser.post('/upload').set('X-CSRF-Token', login.body.csrfToken).attach('file', sample('chrGerm.dcm'), 'chrGerm.dcm');
    expect(withToken.status).toBe(200);
    expect(withToken.body.files[0].status).toBe('stored');
  });
});

describe('GET /upload', () => {
  it('is the upload page, with file and folder pickers', async () => {
    const res = await a.request.get('/upload');
    expect(res.status).toBe(200);
    expect(res.type).toBe('text/html');
    expect(res.text).toContain('webkitdirectory');
    expect(res.text).toContain('X-CSRF-Token');
  });
});
