import dcmjs from 'dcmjs';
import dimse from 'dcmjs-dimse';
import { permits } from '../access.js';
import { recordAudit } from '../audit.js';
import { searchIndex } from '../db/search.js';
import type { DicomJson } from '../dicom/json.js';
import { EXPLICIT_VR_LE } from '../dicom/transfer-syntax.js';
import { isValidUid } from '../dicom/uid.js';
import { DEIDENTIFIED_REFUSAL, NOT_AUTHORIZED, readsDeidentified } from './deidentified.js';
import type { CairnScp, DimseDeps } from './listener.js';
import { STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE } from './negotiate.js';

// Storage Commitment Push Model SCP (PS3.4 Annex J). An N-ACTION asks Cairn
// to take responsibility for a list of instances; an instance is committed
// when it is in the index (so its blob is durable, the write order of the
// store path) and the requesting AE may see it. The answer is an
// N-EVENT-REPORT, sent over a new association to the requesting AE at its
// registered host and port (PS3.4 §J.3.3: the SCP may use a separate
// association), since dcmjs-dimse does not negotiate the role reversal a
// report over the same association needs.

const { Dataset, constants } = dimse;
const { Status } = constants;
const { DicomMetaDictionary } = dcmjs.data;

type ActionRequest = InstanceType<typeof dimse.requests.NActionRequest>;

const TRANSACTION_UID = '00081195';
const REFERENCED_SOP_SEQUENCE = '00081199';
const FAILED_SOP_SEQUENCE = '00081198';
const REFERENCED_SOP_CLASS = '00081150';
const REFERENCED_SOP_INSTANCE = '00081155';
const FAILURE_REASON = '00081197';
/** PS3.4 §J.3.2.1.1: Failure Reason for an instance Cairn does not hold (or the AE may not see). */
const NO_SUCH_OBJECT_INSTANCE = 0x0112;
/** PS3.4 §J.3.2.1.1: the SOP Class named is not the stored instance's. */
const CLASS_INSTANCE_CONFLICT = 0x0119;

interface Reference {
  sopClassUid: string;
  sopInstanceUid: string;
}

export function commitmentService(deps: DimseDeps, scp: CairnScp) {
  async function commit(request: ActionRequest): Promise<{ status: number; comment?: string; report?: () => Promise<void> }> {
    const peer = scp.peer;
    if (!peer) return { status: Status.ProcessingFailure };
    if (request.getRequestedSopClassUid() !== STORAGE_COMMITMENT || request.getActionTypeId() !== 1) return { status: Status.NoSuchActionType };
    const caller = peer.caller();
    if (!permits(caller.principal, 'store') && !permits(caller.principal, 'retrieve')) {
      await recordAudit(deps.audit, caller, 'retrieve', 'denied', { operation: 'storage commitment' });
      return { status: Status.NotAuthorized, comment: 'the calling AE may not ask for storage commitment' };
    }
    // Committing an original UID tells whether it is held; an AE that may store asks of what it stored itself.
    if (!permits(caller.principal, 'store') && readsDeidentified(deps, caller)) {
      await recordAudit(deps.audit, caller, 'retrieve', 'denied', { operation: 'storage commitment', reason: 'de-identified view' });
      return { status: NOT_AUTHORIZED, comment: DEIDENTIFIED_REFUSAL };
    }
    const ae = (await deps.aes.current()).aes.get(peer.callingAe);
    if (!ae?.host || !ae.port) return { status: Status.ProcessingFailure, comment: 'the calling AE has no registered host and port for the report' };
    const identifier = DicomMetaDictionary.denaturalizeDataset(request.getDataset()?.getElements() ?? {}) as DicomJson;
    const transactionUid = String(identifier[TRANSACTION_UID]?.Value?.[0] ?? '').trim();
    const refs: Reference[] = ((identifier[REFERENCED_SOP_SEQUENCE]?.Value ?? []) as DicomJson[]).map((item) => ({
      sopClassUid: String(item?.[REFERENCED_SOP_CLASS]?.Value?.[0] ?? '').trim(),
      sopInstanceUid: String(item?.[REFERENCED_SOP_INSTANCE]?.Value?.[0] ?? '').trim(),
    }));
    if (!isValidUid(transactionUid) || !refs.length || refs.some((r) => !isValidUid(r.sopInstanceUid))) {
      return { status: Status.InvalidArgumentValue, comment: 'a Transaction UID and Referenced SOP Sequence of valid UIDs are required' };
    }
    const rows = await searchIndex(deps.db, caller, {
      level: 'instance',
      matches: [{ tag: '00080018', cond: { op: 'in', values: refs.map((r) => r.sopInstanceUid) } }],
      scope: {},
      limit: refs.length,
      offset: 0,
      load: { study: false, studyCounts: false, series: false, seriesCount: false, metadata: false },
    });
    const held = new Map(rows.map((r) => [r.sopInstanceUid, r.sopClassUid]));
    const committed: DicomJson[] = [];
    const failed: DicomJson[] = [];
    for (const r of refs) {
      const item: DicomJson = {
        [REFERENCED_SOP_CLASS]: { vr: 'UI', Value: [r.sopClassUid] },
        [REFERENCED_SOP_INSTANCE]: { vr: 'UI', Value: [r.sopInstanceUid] },
      };
      const stored = held.get(r.sopInstanceUid);
      if (stored === r.sopClassUid) committed.push(item);
      else failed.push({ ...item, [FAILURE_REASON]: { vr: 'US', Value: [stored === undefined ? NO_SUCH_OBJECT_INSTANCE : CLASS_INSTANCE_CONFLICT] } });
    }
    await recordAudit(deps.audit, caller, 'retrieve', failed.length ? 'partial' : 'success', {
      operation: 'storage commitment',
      transactionUid,
      committed: committed.length,
      failed: failed.length,
    });
    const report: DicomJson = { [TRANSACTION_UID]: { vr: 'UI', Value: [transactionUid] } };
    if (committed.length) report[REFERENCED_SOP_SEQUENCE] = { vr: 'SQ', Value: committed };
    if (failed.length) report[FAILED_SOP_SEQUENCE] = { vr: 'SQ', Value: failed };
    // PS3.4 Table J.3-2: event 1 when every instance is committed, 2 when some failed.
    const event = failed.length ? 2 : 1;
    return { status: Status.Success, report: () => sendReport(ae.title, ae.host as string, ae.port as number, event, report) };
  }

  function sendReport(title: string, host: string, port: number, event: number, report: DicomJson): Promise<void> {
    return new Promise((resolve) => {
      const client = new dimse.Client();
      const request = new dimse.requests.NEventReportRequest(STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE, event);
      request.setDataset(new Dataset(DicomMetaDictionary.naturalizeDataset(report), EXPLICIT_VR_LE));
      request.on('response', (r: InstanceType<typeof dimse.responses.NEventReportResponse>) => {
        if (r.getStatus() !== Status.Success) deps.log.warn({ destination: title, status: r.getStatus() }, 'storage commitment report refused');
      });
      client.addRequest(request);
      client.on('networkError', (err: Error) => deps.log.warn({ err: err.message, destination: title }, 'storage commitment report not delivered'));
      client.on('associationRejected', () => deps.log.warn({ destination: title }, 'storage commitment report refused at association'));
      client.on('closed', () => resolve());
      client.send(host, port, deps.config.dimse.aeTitle, title, { connectTimeout: 10_000, associationTimeout: 30_000, pduTimeout: 60_000 });
    });
  }

  return {
    handle(request: ActionRequest, callback: (r: InstanceType<typeof dimse.responses.NActionResponse>) => void): void {
      const answer = (status: number, comment?: string) => {
        const r = dimse.responses.NActionResponse.fromRequest(request);
        r.setStatus(status);
        if (comment) r.setErrorComment(comment.slice(0, 64));
        callback(r);
      };
      commit(request).then(
        (o) => {
          answer(o.status, o.comment);
          // The report follows the N-ACTION response, never precedes it (PS3.4 §J.3.3).
          if (o.report) setImmediate(() => void o.report?.());
        },
        (err: unknown) => {
          deps.log.error({ err }, 'storage commitment failed');
          answer(Status.ProcessingFailure);
        },
      );
    },
  };
}
