import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestArchive, multipartBody, type TestArchive } from './helpers.js';
import { syntheticInstance } from './synthetic.js';

// The audit trail as DICOM audit messages (PS3.15 Annex A.5) over syslog
// (RFC 5424 on UDP), received by a real socket.

let a: TestArchive;
let collector: dgram.Socket;
const received: string[] = [];
const inst = syntheticInstance();

beforeAll(async () => {
  collector = dgram.createSocket('udp4');
  collector.on('message', (m) => received.push(m.toString('utf8')));
  await new Promise<void>((r) => collector.bind(0, '127.0.0.1', () => r()));
  a = await createTestArchive({ auditSyslog: `udp://127.0.0.1:${(collector.address() as AddressInfo).port}` });
  const { body, contentType } = multipartBody([inst.bytes]);
  await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body);
});
afterAll(async () => {
  await a?.close();
  collector?.close();
});

async function next(match: (m: string) => boolean): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const m = received.find(match);
    if (m) return m;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no such audit message among ${received.length}`);
}

describe('DICOM audit messages over syslog', () => {
  it('a store is "DICOM Instances Transferred" with action C, the user and the study', async () => {
    const m = await next((x) => x.includes('EventActionCode="C"'));
    expect(m).toMatch(/^<85>1 \S+ \S+ cairn \d+ IHE\+RFC-3881 - /);
    expect(m).toContain('<EventID csd-code="110104" codeSystemName="DCM" originalText="DICOM Instances Transferred"/>');
    expect(m).toContain('UserID="test-admin" UserIsRequestor="true"');
    expect(m).toContain(`ParticipantObjectID="${inst.studyUid}"`);
    expect(m).toContain('EventOutcomeIndicator="0"');
  });

  it('a break-glass search is a Query flagged as an Emergency Override, with the reason', async () => {
    await a
      .as({ sub: 'dr-er', roles: ['clinician'] })
      .get('/dicom-web/studies')
      .set('X-Break-Glass', 'trauma call, patient unconscious');
    const m = await next((x) => x.includes('UserID="dr-er"'));
    expect(m).toContain('<EventID csd-code="110112" codeSystemName="DCM" originalText="Query"/>');
    expect(m).toContain('<EventTypeCode csd-code="110127" codeSystemName="DCM" originalText="Emergency Override Started"/>');
    expect(m).toContain(Buffer.from('trauma call, patient unconscious').toString('base64'));
  });

  it('a retrieve, whose row its lookup writes, is sent too, with the instance it returned', async () => {
    const res = await a
      .as({ sub: 'dr-meta', roles: ['clinician'] })
      .get(`/dicom-web/studies/${inst.studyUid}/series/${inst.seriesUid}/instances/${inst.sopInstanceUid}/metadata`);
    expect(res.status).toBe(200);
    const m = await next((x) => x.includes('UserID="dr-meta"'));
    expect(m).toContain(`ParticipantObjectID="${inst.studyUid}"`);
    expect(m).toContain('EventOutcomeIndicator="0"');
  });

  it('a refused request is a failure (EventOutcomeIndicator 4)', async () => {
    await a.as({ sub: 'pacs-9', roles: ['uploader'] }).get('/dicom-web/studies');
    const m = await next((x) => x.includes('UserID="pacs-9"'));
    expect(m).toContain('EventOutcomeIndicator="4"');
  });
});
