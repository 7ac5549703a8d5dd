import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryParser, createTestArchive, multipartBody, sample, type TestArchive } from '../helpers.js';
import { syntheticInstance, uid } from '../synthetic.js';

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive();
});
afterAll(async () => {
  await a?.close();
});

function stow(parts: Buffer[], url = '/dicom-web/studies', contentType?: string) {
  const m = multipartBody(parts);
  return a.request
    .post(url)
    .set('Content-Type', contentType ?? m.contentType)
    .send(m.body);
}

async function blobCount(): Promise<number> {
  let n = 0;
  for await (const _ of a.deps.blobs.list('instances/')) n++;
  return n;
}

describe('STOW-RS', () => {
  it('stores an instance and answers 200 with the Store Instances Response Module', async () => {
    const res = await stow([sample('CT_small.dcm')]);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/dicom\+json/);
    const ref = res.body['00081199'].Value[0];
    expect(ref['00081150'].Value).toEqual(['1.2.840.10008.5.1.4.1.1.2']);
    expect(ref['00081155'].Value).toEqual(['1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322']);
    expect(ref['00081190'].Value[0]).toMatch(
      /\/dicom-web\/studies\/1\.3\.6\.1\.4\.1\.5962\.1\.2\.1\.20040119072730\.12322\/series\/.+\/instances\/1\.3\.6\.1\.4\.1\.5962\.1\.1\.1\.1\.1\.20040119072730\.12322$/,
    );
    expect(res.body['00081190'].Value[0]).toMatch(/\/dicom-web\/studies\/1\.3\.6\.1\.4\.1\.5962\.1\.2\.1\.20040119072730\.12322$/);
    expect(res.body['00081198']).toBeUndefined();
  });

  it('stores every sample file, with the implicit-VR twin of MR_small failing as a conflicting duplicate', async () => {
    const names = [
      'MR_small.dcm',
      'MR_small_implicit.dcm',
      'JPEG-lossy.dcm',
      'JPEG2000.dcm',
      'SC_rgb_jpeg.dcm',
      'SC_rgb_rle_2frame.dcm',
      'chrGerm.dcm',
      'chrJapMulti.dcm',
      'test-SR.dcm',
    ];
    const res = await stow(names.map(sample));
    expect(res.status).toBe(202);
    expect(res.body['00081199'].Value).toHaveLength(8);
    const failed = res.body['00081198'].Value;
    expect(failed).toHaveLength(1);
    expect(failed[0]['00081197'].Value).toEqual([0x0111]);
    expect(res.body['00081190']).toEqual({ vr: 'UR' });
  });

  it('treats storing identical bytes again as success without a second index row', async () => {
    const inst = syntheticInstance();
    expect((await stow([inst.bytes])).status).toBe(200);
    const again = await stow([inst.bytes]);
    expect(again.status).toBe(200);
    const rows = await a.deps.db('instances').where({ sop_instance_uid: inst.sopInstanceUid });
    expect(rows).toHaveLength(1);
  });

  it('rejects different content under an existing SOP Instance UID and keeps the original', async () => {
    const first = syntheticInstance();
    await stow([first.bytes]);
    const other = syntheticInstance({ studyUid: first.studyUid, seriesUid: first.seriesUid, sopInstanceUid: first.sopInstanceUid, PatientID: 'OTHER' });
    const res = await stow([other.bytes]);
    expect(res.status).toBe(409);
    expect(res.body['00081198'].Value[0]['00081197'].Value).toEqual([0x0111]);
    expect(res.body['00081198'].Value[0]['00081155'].Value).toEqual([first.sopInstanceUid]);
    const got = await a.request
      .get(`/dicom-web/studies/${first.studyUid}/series/${first.seriesUid}/instances/${first.sopInstanceUid}`)
      .set('Accept', 'application/dicom')
      .buffer(true)
      .parse(binaryParser);
    expect(Buffer.compare(got.body, first.bytes)).toBe(0);
  });

  it('fails a non-DICOM part alone and stores the rest (202)', async () => {
    const good = syntheticInstance();
    const before = await blobCount();
    const res = await stow([Buffer.from('this is not a DICOM file'), good.bytes]);
    expect(res.status).toBe(202);
    expect(res.body['00081198'].Value[0]['00081197'].Value).toEqual([0xc000]);
    expect(res.body['00081199'].Value[0]['00081155'].Value).toEqual([good.sopInstanceUid]);
    expect(await blobCount()).toBe(before + 1);
  });

  it('fails a truncated instance without leaving a blob or an index row', async () => {
    const inst = syntheticInstance({ rows: 64, columns: 64 });
    const before = await blobCount();
    const res = await stow([inst.bytes.subarray(0, inst.bytes.length - 100)]);
    expect(res.status).toBe(400);
    expect(res.body['00081198'].Value[0]['00081197'].Value).toEqual([0xc000]);
    expect(await blobCount()).toBe(before);
    expect(await a.deps.db('instances').where({ sop_instance_uid: inst.sopInstanceUid })).toHaveLength(0);
  });

  it('fails an instance without a Series Instance UID with 0xA900', async () => {
    const inst = syntheticInstance({ SeriesInstanceUID: undefined });
    const res = await stow([inst.bytes]);
    expect(res.status).toBe(409);
    expect(res.body['00081198'].Value[0]['00081197'].Value).toEqual([0xa900]);
  });

  it('fails, per instance, an instance of another study posted to /studies/{study}', async () => {
    const target = uid();
    const mine = syntheticInstance({ studyUid: target });
    const stranger = syntheticInstance();
    const res = await stow([mine.bytes, stranger.bytes], `/dicom-web/studies/${target}`);
    expect(res.status).toBe(202);
    expect(res.body['00081199'].Value[0]['00081155'].Value).toEqual([mine.sopInstanceUid]);
    expect(res.body['00081198'].Value[0]['00081155'].Value).toEqual([stranger.sopInstanceUid]);
    expect(res.body['00081198'].Value[0]['00081197'].Value).toEqual([0xc409]);
    expect(await a.deps.db('instances').where({ sop_instance_uid: stranger.sopInstanceUid })).toHaveLength(0);
  });

  it('accepts an unquoted boundary and a missing type parameter', async () => {
    const inst = syntheticInstance();
    const m = multipartBody([inst.bytes], 'plainboundary123');
    const res = await a.request.post('/dicom-web/studies').set('Content-Type', 'multipart/related; boundary=plainboundary123').send(m.body);
    expect(res.status).toBe(200);
  });

  it('accepts a quoted boundary', async () => {
    const inst = syntheticInstance();
    const m = multipartBody([inst.bytes], 'quoted:boundary');
    const res = await a.request
      .post('/dicom-web/studies')
      .set('Content-Type', 'multipart/related; type="application/dicom"; boundary="quoted:boundary"')
      .send(m.body);
    expect(res.status).toBe(200);
  });

  it('answers 415 with a JSON body for a Content-Type that is not multipart/related', async () => {
    const res = await a.request.post('/dicom-web/studies').set('Content-Type', 'application/json').send('{}');
    expect(res.status).toBe(415);
    expect(res.body.error).toBe('UnsupportedMediaType');
  });

  it('answers 415 for multipart/related of another type', async () => {
    const res = await stow([Buffer.from('<x/>')], '/dicom-web/studies', 'multipart/related; type="application/pdf"; boundary=x');
    expect(res.status).toBe(415);
  });

  it('answers 400 for a multipart body that never closes', async () => {
    const res = await a.request
      .post('/dicom-web/studies')
      .set('Content-Type', 'multipart/related; type="application/dicom"; boundary=abc')
      .send(Buffer.from('--abc\r\nContent-Type: application/dicom\r\n\r\nDICM...'));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('MalformedMultipart');
  });

  it('stores a multi-frame instance whose frames are located in the blob', async () => {
    const inst = syntheticInstance({ frames: 3 });
    await stow([inst.bytes]);
    const row = await a.deps.db('instances').where({ sop_instance_uid: inst.sopInstanceUid }).first();
    expect(row.number_of_frames).toBe(3);
    expect(row.frames.map((f: { length: number }[]) => f[0].length)).toEqual([16, 16, 16]);
  });
});

describe('STOW-RS, instances that fail alone', () => {
  it('fails an instance with an unknown character set with 0xC000 and stores the others', async () => {
    const bad = syntheticInstance({ SpecificCharacterSet: 'ISO 2022 IR 999', PatientName: 'X^Y' });
    const good = syntheticInstance();
    const res = await stow([bad.bytes, good.bytes]);
    expect(res.status).toBe(202);
    expect(res.body['00081198'].Value[0]['00081197'].Value).toEqual([0xc000]);
    expect(res.body['00081199'].Value[0]['00081155'].Value).toEqual([good.sopInstanceUid]);
  });

  it('names the SOP Instance UID of an instance that lacks another required UID', async () => {
    const inst = syntheticInstance({ StudyInstanceUID: undefined });
    const res = await stow([inst.bytes]);
    expect(res.body['00081198'].Value[0]['00081155'].Value).toEqual([inst.sopInstanceUid]);
  });
});

describe('STOW-RS, a client that hangs up', () => {
  it('leaves neither a blob nor an index row for the instance it broke off', async () => {
    const http = await import('node:http');
    const server = a.app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const before = await blobCount();
    const inst = syntheticInstance({ rows: 256, columns: 256 });
    await new Promise<void>((resolve) => {
      const req = http.request({
        host: '127.0.0.1',
        port: (server.address() as { port: number }).port,
        path: '/dicom-web/studies',
        method: 'POST',
        headers: { 'content-type': 'multipart/related; type="application/dicom"; boundary=hangup', 'transfer-encoding': 'chunked' },
      });
      req.on('error', () => resolve());
      req.write('--hangup\r\nContent-Type: application/dicom\r\n\r\n');
      req.write(inst.bytes.subarray(0, 40_000));
      setTimeout(() => req.destroy(), 200);
      req.on('close', () => resolve());
    });
    // Give the server a moment to notice and clean up.
    await new Promise((r) => setTimeout(r, 300));
    await new Promise((r) => server.close(r));
    expect(await blobCount()).toBe(before);
    expect(await a.deps.db('instances').where({ sop_instance_uid: inst.sopInstanceUid })).toHaveLength(0);
  });
});
