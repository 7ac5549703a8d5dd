import dimse from 'dcmjs-dimse';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../global-setup.js';
import { multipartBody, sample } from '../helpers.js';
import { dimseArchive } from './harness.js';

// A modality asking for storage commitment, played by dcmjs-dimse: it sends
// the N-ACTION and listens for the N-EVENT-REPORT on its registered port.

type Archive = Awaited<ReturnType<typeof dimseArchive>>;
let a: Archive;
let reportPort: number;
let server: InstanceType<typeof dimse.Server>;
const reports: { event: number; elements: Record<string, unknown> }[] = [];
const CT = { sopClassUid: '1.2.840.10008.5.1.4.1.1.2', sopInstanceUid: '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322' };
const MISSING = { sopClassUid: '1.2.840.10008.5.1.4.1.1.2', sopInstanceUid: '1.2.3.4.5.6.7.8.9' };

class ReportScp extends dimse.Scp {
  override associationRequested(association: InstanceType<typeof dimse.association.Association>): void {
    for (const { id } of association.getPresentationContexts()) {
      const pc = association.getPresentationContext(id);
      pc.setResult(dimse.constants.PresentationContextResult.Accept, pc.getTransferSyntaxUids()[0]);
    }
    this.sendAssociationAccept();
  }
  override associationReleaseRequested(): void {
    this.sendAssociationReleaseResponse();
  }
  override nEventReportRequest(
    request: InstanceType<typeof dimse.requests.NEventReportRequest>,
    callback: (r: InstanceType<typeof dimse.responses.NEventReportResponse>) => void,
  ): void {
    reports.push({ event: request.getEventTypeId(), elements: request.getDataset()?.getElements() ?? {} });
    const r = dimse.responses.NEventReportResponse.fromRequest(request);
    r.setStatus(0);
    callback(r);
  }
}

beforeAll(async () => {
  reportPort = await freePort();
  server = new dimse.Server(ReportScp);
  server.listen(reportPort);
  a = await dimseArchive([
    { title: 'MODALITY', host: '127.0.0.1', port: reportPort, roles: ['uploader'] },
    { title: 'NOPORT', roles: ['uploader'] },
  ]);
  const { body, contentType } = multipartBody([sample('CT_small.dcm')]);
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body)).status).toBe(200);
});
afterAll(async () => {
  server?.close();
  await a?.close();
});

function requestCommitment(ae: string, transactionUid: string, refs: { sopClassUid: string; sopInstanceUid: string }[]): Promise<number | undefined> {
  return new Promise((resolve) => {
    const client = new dimse.Client();
    const request = new dimse.requests.NActionRequest('1.2.840.10008.1.20.1', '1.2.840.10008.1.20.1.1', 1);
    request.setDataset(
      new dimse.Dataset({
        TransactionUID: transactionUid,
        ReferencedSOPSequence: refs.map((r) => ({ ReferencedSOPClassUID: r.sopClassUid, ReferencedSOPInstanceUID: r.sopInstanceUid })),
      }),
    );
    let status: number | undefined;
    request.on('response', (r: InstanceType<typeof dimse.responses.NActionResponse>) => {
      status = r.getStatus();
    });
    client.addRequest(request);
    client.on('closed', () => resolve(status));
    client.on('networkError', () => resolve(status));
    client.send('127.0.0.1', a.port, ae, 'CAIRN');
  });
}

async function reportFor(transactionUid: string): Promise<{ event: number; elements: Record<string, unknown> }> {
  for (let i = 0; i < 100; i++) {
    const r = reports.find((x) => x.elements.TransactionUID === transactionUid);
    if (r) return r;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('no N-EVENT-REPORT arrived');
}

it('commits a stored instance and reports it with event type 1', async () => {
  expect(await requestCommitment('MODALITY', '1.2.3.100', [CT])).toBe(0);
  const report = await reportFor('1.2.3.100');
  expect(report.event).toBe(1);
  expect(report.elements.ReferencedSOPSequence).toMatchObject([{ ReferencedSOPClassUID: CT.sopClassUid, ReferencedSOPInstanceUID: CT.sopInstanceUid }]);
  expect(report.elements.FailedSOPSequence).toBeUndefined();
});

it('reports an instance it does not hold as failed (0x0112) with event type 2', async () => {
  expect(await requestCommitment('MODALITY', '1.2.3.101', [CT, MISSING])).toBe(0);
  const report = await reportFor('1.2.3.101');
  expect(report.event).toBe(2);
  expect(report.elements.FailedSOPSequence).toMatchObject([
    { ReferencedSOPClassUID: MISSING.sopClassUid, ReferencedSOPInstanceUID: MISSING.sopInstanceUid, FailureReason: 0x0112 },
  ]);
});

it('refuses commitment for an AE with no registered port to report to', async () => {
  expect(await requestCommitment('NOPORT', '1.2.3.102', [CT])).toBe(0x0110);
});
