import dcmjs from 'dcmjs';
import dimse from 'dcmjs-dimse';
import { permits, type Caller } from '../access.js';
import { recordAudit } from '../audit.js';
import { findInstances, type StoredInstance, type Target } from '../db/lookup.js';
import { searchIndex } from '../db/search.js';
import type { DicomJson, JsonAttribute } from '../dicom/json.js';
import { EXPLICIT_VR_LE, IMPLICIT_VR_LE } from '../dicom/transfer-syntax.js';
import { isValidUid } from '../dicom/uid.js';
import { deidentifyPart10, WithheldError } from '../deid/part10.js';
import type { DeidView } from '../deid/research.js';
import { DEIDENTIFIED_REFUSAL, NOT_AUTHORIZED, readsDeidentified } from './deidentified.js';
import type { CairnScp, DimseDeps } from './listener.js';
import { PATIENT_ROOT } from './negotiate.js';

// C-GET and C-MOVE SCP (PS3.4 §C.4.2, §C.4.3). The identifier names studies,
// series or instances by their unique keys (PS3.4 §C.4.2.1.4: UID lists
// allowed); the instances are those the calling AE may see, read by the
// scoped lookup (server/db/lookup.ts), and each is sent by a C-STORE
// sub-operation: over the same association for C-GET, over a new one to a
// registered destination for C-MOVE. Instance bytes go as stored, never
// decoded: a destination that refuses the stored syntax gets a native
// instance re-encoded between the little-endian native syntaxes, and a
// compressed one counted as a failed sub-operation. A caller of a
// de-identified view names pseudonyms and is sent each instance rewritten by
// its view's profile (server/deid/part10.ts). dcmjs-dimse has no
// sub-operation logic of its own; counts, pending responses, warnings and
// the Failed SOP Instance UID List are written here.

const { Dataset, constants } = dimse;
const { Status, PresentationContextResult } = constants;
const { DicomMetaDictionary } = dcmjs.data;

type GetRequest = InstanceType<typeof dimse.requests.CGetRequest>;
type MoveRequest = InstanceType<typeof dimse.requests.CMoveRequest>;
type RetrieveRequest = GetRequest | MoveRequest;
type StoreRequest = InstanceType<typeof dimse.requests.CStoreRequest>;
type Association = InstanceType<typeof dimse.association.Association>;

const FAILED_SOP_INSTANCES = '00080058';
/** PS3.4 Table C.4-2/C.4-3 statuses. */
const MOVE_DESTINATION_UNKNOWN = 0xa801;
const IDENTIFIER_MISMATCH = 0xa900;
const SUB_OPERATIONS_FAILED = 0xa702;
const SUB_OPERATIONS_WARNING = 0xb000;
const UNABLE_TO_PROCESS = 0xc000;
/** The instances one C-MOVE association to the destination carries at most, so memory stays bounded. */
const MOVE_BATCH = 32;

/** A data set whose bytes are those stored: sent as they are, never re-encoded by dcmjs-dimse. */
class StoredDataset extends Dataset {
  constructor(
    private readonly bytes: Buffer,
    sopClassUid: string,
    sopInstanceUid: string,
    transferSyntaxUid: string,
  ) {
    super({ SOPClassUID: sopClassUid, SOPInstanceUID: sopInstanceUid }, transferSyntaxUid);
  }

  override getDenaturalizedDataset(): Buffer {
    return this.bytes;
  }
}

/** The data set of a stored Part-10 file: the bytes after its File Meta Information (PS3.10 §7.1), always Explicit VR LE. */
export function dataSetOf(file: Buffer): Buffer {
  let pos = 132;
  while (pos + 8 <= file.length && file.readUInt16LE(pos) === 0x0002) {
    const vr = file.toString('latin1', pos + 4, pos + 6);
    const long = ['OB', 'OD', 'OF', 'OL', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT', 'OV', 'SV', 'UV'].includes(vr);
    pos += long ? 12 + file.readUInt32LE(pos + 8) : 8 + file.readUInt16LE(pos + 6);
  }
  return file.subarray(pos);
}

const NATIVE_LE = new Set([IMPLICIT_VR_LE, EXPLICIT_VR_LE]);

/**
 * The data set to send an instance as, given the syntaxes the other side
 * accepted for its SOP Class: as stored when one of them is the stored
 * syntax; parsed, for dcmjs-dimse to re-encode, when both are native little
 * endian; undefined when it cannot be sent without decoding its pixel data.
 */
function datasetFor(inst: StoredInstance, bytes: Buffer, accepted: readonly string[]): InstanceType<typeof Dataset> | undefined {
  if (accepted.includes(inst.transferSyntaxUid)) return new StoredDataset(bytes, inst.sopClassUid, inst.sopInstanceUid, inst.transferSyntaxUid);
  if (NATIVE_LE.has(inst.transferSyntaxUid) && accepted.some((ts) => NATIVE_LE.has(ts))) return new Dataset(bytes, inst.transferSyntaxUid);
  return undefined;
}

function acceptedSyntaxes(association: Association, sopClassUid: string): string[] {
  const out: string[] = [];
  for (const { id } of association.getPresentationContexts()) {
    const pc = association.getPresentationContext(id);
    if (pc.getAbstractSyntaxUid() === sopClassUid && pc.getResult() === PresentationContextResult.Accept) {
      const ts = pc.getAcceptedTransferSyntaxUid();
      if (ts) out.push(ts);
    }
  }
  return out;
}

class IdentifierError extends Error {}

function uids(attr: JsonAttribute | undefined): string[] {
  return (attr?.Value ?? [])
    .flatMap((v) => String(v ?? '').split('\\'))
    .map((u) => u.replace(/[ \0]+$/, '').trim())
    .filter((u) => u !== '');
}

/** A UID no instance has: what a UID a de-identified view never showed stands for, so that it names nothing. */
const NO_SUCH_UID = '2.25.0';

/**
 * The targets an identifier names (PS3.4 §C.4.2.2.1: unique keys of the
 * level and above, a list at the level itself). For a caller of a
 * de-identified view the keys are the pseudonyms it was shown, turned into
 * the originals; an original UID or Patient ID it sends names nothing.
 */
async function targetsOf(deps: DimseDeps, caller: Caller, sopClass: string, identifier: DicomJson, view?: DeidView): Promise<Target[]> {
  const level = String(identifier['00080052']?.Value?.[0] ?? '')
    .trim()
    .toUpperCase();
  const given = [uids(identifier['0020000D']), uids(identifier['0020000E']), uids(identifier['00080018'])];
  for (const u of given.flat()) if (!isValidUid(u)) throw new IdentifierError(`"${u}" is not a valid UID`);
  const research = deps.research;
  const [studies, series, instances] =
    view && research
      ? await Promise.all(given.map((list) => Promise.all(list.map(async (u) => (await research.original(deps.db, view, u)) ?? NO_SUCH_UID))))
      : given;
  const one = (list: string[], name: string) => {
    if (list.length !== 1) throw new IdentifierError(`${name} must name exactly one UID above the retrieve level`);
    return list[0];
  };
  switch (level) {
    case 'PATIENT': {
      if (sopClass !== PATIENT_ROOT.get && sopClass !== PATIENT_ROOT.move) throw new IdentifierError('the Study Root model has no PATIENT level');
      let ids = (identifier['00100020']?.Value ?? []).map((v) => String(v ?? '').trim()).filter((v) => v);
      if (ids.length !== 1) throw new IdentifierError('a PATIENT level retrieve needs one Patient ID');
      if (view && deps.research) {
        const original = await deps.research.originalPatientId(deps.db, view, ids[0]);
        if (original === undefined) return [];
        ids = [original];
      }
      const rows = await searchIndex(deps.db, caller, {
        level: 'study',
        matches: [{ tag: '00100020', cond: { op: 'in', values: ids } }],
        scope: {},
        limit: 100_000,
        offset: 0,
        load: { study: false, studyCounts: false, series: false, seriesCount: false, metadata: false },
      });
      return rows.map((r) => ({ studyUid: r.studyUid }));
    }
    case 'STUDY':
      if (!studies.length) throw new IdentifierError('a STUDY level retrieve needs Study Instance UIDs');
      return studies.map((studyUid) => ({ studyUid }));
    case 'SERIES': {
      const studyUid = one(studies, 'Study Instance UID');
      if (!series.length) throw new IdentifierError('a SERIES level retrieve needs Series Instance UIDs');
      return series.map((seriesUid) => ({ studyUid, seriesUid }));
    }
    case 'IMAGE': {
      const studyUid = one(studies, 'Study Instance UID');
      const seriesUid = one(series, 'Series Instance UID');
      if (!instances.length) throw new IdentifierError('an IMAGE level retrieve needs SOP Instance UIDs');
      return instances.map((sopInstanceUid) => ({ studyUid, seriesUid, sopInstanceUid }));
    }
    default:
      throw new IdentifierError(`Query/Retrieve Level "${level}" is not PATIENT, STUDY, SERIES or IMAGE`);
  }
}

/** One instance as it leaves: the UIDs it is sent under, and its data set, absent when it is not sent. */
interface Outgoing {
  sent: StoredInstance;
  bytes?: Buffer;
}

interface Counts {
  remaining: number;
  completed: number;
  failed: number;
  warning: number;
  failedUids: string[];
}

/** Sends one C-STORE request over a network of dcmjs-dimse and resolves with the status of its response. */
function storeOver(network: { sendRequests(r: StoreRequest[]): void }, request: StoreRequest): Promise<number> {
  return new Promise((resolve) => {
    let status: number | undefined;
    request.on('response', (response: InstanceType<typeof dimse.responses.CStoreResponse>) => {
      status = response.getStatus();
    });
    request.on('done', () => resolve(status ?? Status.ProcessingFailure));
    network.sendRequests([request]);
  });
}

function tally(c: Counts, inst: StoredInstance, status: number | undefined): void {
  c.remaining--;
  if (status === 0) c.completed++;
  else if (status !== undefined && (status & 0xf000) === 0xb000) c.warning++;
  else {
    c.failed++;
    c.failedUids.push(inst.sopInstanceUid);
  }
}

export function retrieveService(deps: DimseDeps, scp: CairnScp) {
  const running = new Map<number, { cancelled: boolean }>();

  async function retrieve(request: RetrieveRequest, kind: 'get' | 'move', state: { cancelled: boolean }): Promise<void> {
    const isGet = kind === 'get';
    const respond = (status: number, c?: Counts, comment?: string) => {
      const r = isGet ? dimse.responses.CGetResponse.fromRequest(request as GetRequest) : dimse.responses.CMoveResponse.fromRequest(request as MoveRequest);
      r.setAffectedSopClassUid(request.getAffectedSopClassUid());
      r.setStatus(status);
      if (comment) r.setErrorComment(comment.slice(0, 64));
      if (c) {
        // PS3.4 §C.4.2.1.6: Remaining only in Pending responses; the final one carries the totals.
        if (status === Status.Pending) r.setRemaining(c.remaining);
        r.setCompleted(c.completed);
        r.setFailures(c.failed);
        r.setWarnings(c.warning);
        if (status !== Status.Pending && c.failedUids.length) {
          r.setDataset(new Dataset(DicomMetaDictionary.naturalizeDataset({ [FAILED_SOP_INSTANCES]: { vr: 'UI', Value: c.failedUids } }), IMPLICIT_VR_LE));
        }
      }
      scp.respond(request, r);
    };
    const peer = scp.peer;
    if (!peer) return respond(Status.ProcessingFailure);
    const caller = peer.caller();
    const audit = (outcome: string, detail: Record<string, unknown>) =>
      recordAudit(deps.audit, caller, 'retrieve', outcome, { operation: isGet ? 'C-GET' : 'C-MOVE', ...detail });
    if (!permits(caller.principal, 'retrieve')) {
      await audit('denied', {});
      return respond(Status.NotAuthorized, undefined, 'the calling AE may not retrieve');
    }
    // A caller of a de-identified view names pseudonyms and is sent de-identified instances (below);
    // one whose view Cairn cannot apply would be sent instances as stored, and is refused.
    const view = deps.research?.viewOf(caller);
    if (!view && readsDeidentified(deps, caller)) {
      await audit('denied', { reason: 'de-identified view' });
      return respond(NOT_AUTHORIZED, undefined, DEIDENTIFIED_REFUSAL);
    }
    let destination: { title: string; host: string; port: number } | undefined;
    if (!isGet) {
      const title = String((request as MoveRequest).getCommandDataset().getElement('MoveDestination') ?? '').trim();
      const ae = (await deps.aes.current()).aes.get(title);
      if (!ae?.moveDestination || !ae.host || !ae.port) {
        await audit('invalid', { error: `move destination ${title} unknown` });
        return respond(MOVE_DESTINATION_UNKNOWN, undefined, `move destination ${title} is not registered as one`);
      }
      destination = { title, host: ae.host, port: ae.port };
    }
    let instances: StoredInstance[] = [];
    try {
      const identifier = DicomMetaDictionary.denaturalizeDataset(request.getDataset()?.getElements() ?? {}) as DicomJson;
      for (const t of await targetsOf(deps, caller, request.getAffectedSopClassUid(), identifier, view))
        instances.push(...(await findInstances(deps.db, caller, t)));
    } catch (err) {
      if (!(err instanceof IdentifierError)) throw err;
      await audit('invalid', { error: err.message });
      return respond(IDENTIFIER_MISMATCH, undefined, err.message);
    }
    instances = [...new Map(instances.map((i) => [i.sopInstanceUid, i])).values()];
    const c: Counts = { remaining: instances.length, completed: 0, failed: 0, warning: 0, failedUids: [] };
    const out = (inst: StoredInstance) => outgoing(caller, view, inst);
    if (isGet) await getSubOperations(instances, c, state, respond, out);
    else if (destination) await moveSubOperations(instances, c, state, respond, destination, peer.callingAe, request.getMessageId(), out);
    // Sub-operations never started (a cancel) are neither completed nor failed; the final response counts what happened.
    const status = state.cancelled
      ? Status.Cancel
      : c.failed === 0 && c.warning === 0
        ? Status.Success
        : c.completed === 0 && c.warning === 0
          ? SUB_OPERATIONS_FAILED
          : SUB_OPERATIONS_WARNING;
    await audit(c.failed ? (c.completed ? 'partial' : 'error') : 'success', {
      completed: c.completed,
      failed: c.failed,
      warning: c.warning,
      ...(destination ? { destination: destination.title } : {}),
      ...(state.cancelled ? { cancelled: true } : {}),
    });
    respond(status, c);
  }

  /** C-GET: each instance by a C-STORE over this association, in a context the SCU accepted for its SOP Class (PS3.4 §C.4.3.3). */
  async function getSubOperations(
    instances: StoredInstance[],
    c: Counts,
    state: { cancelled: boolean },
    respond: (s: number, c?: Counts) => void,
    out: (inst: StoredInstance) => Promise<Outgoing>,
  ) {
    const association = (scp as unknown as { association: Association }).association;
    for (const inst of instances) {
      if (state.cancelled) break;
      const { sent, bytes } = await out(inst);
      const dataset = bytes && datasetFor(sent, bytes, acceptedSyntaxes(association, sent.sopClassUid));
      if (!dataset) tally(c, sent, undefined);
      else tally(c, sent, await storeOver(scp as unknown as { sendRequests(r: StoreRequest[]): void }, new dimse.requests.CStoreRequest(dataset)));
      respond(Status.Pending, c);
      await scp.flushed();
    }
  }

  /**
   * C-MOVE: the instances go to the destination over associations Cairn
   * opens as CAIRN, MOVE_BATCH instances each, so no more than that many are
   * held in memory; each C-STORE names the move's originator (PS3.7 §9.3.1.1).
   */
  async function moveSubOperations(
    instances: StoredInstance[],
    c: Counts,
    state: { cancelled: boolean },
    respond: (s: number, c?: Counts) => void,
    dest: { title: string; host: string; port: number },
    originator: string,
    messageId: number,
    out: (inst: StoredInstance) => Promise<Outgoing>,
  ) {
    for (let i = 0; i < instances.length && !state.cancelled; i += MOVE_BATCH) {
      const ready = await Promise.all(instances.slice(i, i + MOVE_BATCH).map(out));
      const batch: StoredInstance[] = [];
      const bytes: Buffer[] = [];
      for (const o of ready) {
        if (o.bytes) {
          batch.push(o.sent);
          bytes.push(o.bytes);
        } else tally(c, o.sent, undefined);
      }
      const answered = new Set<number>();
      if (batch.length < ready.length) respond(Status.Pending, c);
      if (batch.length)
        await sendBatch(batch, bytes, dest, originator, messageId, (k, status) => {
          answered.add(k);
          tally(c, batch[k], status);
          respond(Status.Pending, c);
        });
      // A sub-operation without a C-STORE response (refused context, lost association) failed.
      batch.forEach((inst, k) => {
        if (!answered.has(k)) tally(c, inst, undefined);
      });
      await scp.flushed();
    }
  }

  async function sendBatch(
    batch: StoredInstance[],
    bytes: Buffer[],
    dest: { title: string; host: string; port: number },
    originator: string,
    messageId: number,
    onStatus: (k: number, status: number) => void,
  ): Promise<void> {
    const client = new dimse.Client();
    const requests = batch.map((inst, k) => {
      const r = new dimse.requests.CStoreRequest(new StoredDataset(bytes[k], inst.sopClassUid, inst.sopInstanceUid, inst.transferSyntaxUid));
      r.getCommandDataset().setElement('MoveOriginatorApplicationEntityTitle', originator);
      r.getCommandDataset().setElement('MoveOriginatorMessageID', messageId as unknown as string);
      r.on('response', (response: InstanceType<typeof dimse.responses.CStoreResponse>) => onStatus(k, response.getStatus()));
      client.addRequest(r);
      return r;
    });
    // Before any request is sent, each gets the data set its accepted context allows, or is dropped as a failed sub-operation.
    client.on('associationAccepted', (association: Association) => {
      const queue = (client as unknown as { requests: StoreRequest[] }).requests;
      queue.length = 0;
      batch.forEach((inst, k) => {
        const dataset = datasetFor(inst, bytes[k], acceptedSyntaxes(association, inst.sopClassUid));
        if (!dataset) return;
        requests[k].setDataset(dataset);
        queue.push(requests[k]);
      });
    });
    await new Promise<void>((resolve) => {
      client.on('closed', () => resolve());
      client.on('networkError', (err: Error) => {
        deps.log.warn({ err: err.message, destination: dest.title }, 'C-MOVE destination unreachable');
      });
      client.on('associationRejected', () => deps.log.warn({ destination: dest.title }, 'C-MOVE destination refused the association'));
      client.send(dest.host, dest.port, deps.config.dimse.aeTitle, dest.title, { connectTimeout: 10_000, associationTimeout: 30_000, pduTimeout: 60_000 });
    });
  }

  /**
   * An instance as this caller is sent it: its data set as stored; for a
   * caller of a de-identified view, rewritten by the view's profile under its
   * pseudonymous UIDs (the bytes seam's case, server/deid/bytes.ts), the
   * pseudonyms written before it leaves, and no bytes when the view withholds
   * it (burned-in annotation), a failed sub-operation.
   */
  async function outgoing(caller: Caller, view: DeidView | undefined, inst: StoredInstance): Promise<Outgoing> {
    const file = await deps.blobs.read(inst.blobKey, inst.size);
    if (!view) return { sent: inst, bytes: dataSetOf(file) };
    const d = view.deidentifier;
    const sent = { ...inst, studyUid: d.uid(inst.studyUid), seriesUid: d.uid(inst.seriesUid), sopInstanceUid: d.uid(inst.sopInstanceUid) };
    let rewritten: Buffer;
    try {
      rewritten = await deidentifyPart10(file, d, {
        bulkThreshold: deps.config.bulkDataThreshold,
        maxHeaderBytes: deps.config.maxHeaderBytes,
        maxSequenceDepth: deps.config.maxSequenceDepth,
        maxDataElements: deps.config.maxDataElements,
      });
    } catch (err) {
      if (err instanceof WithheldError) return { sent };
      throw err;
    }
    deps.research?.note(caller, view, inst);
    await deps.research?.flush(deps.db, caller);
    return { sent, bytes: dataSetOf(rewritten) };
  }

  function start(request: RetrieveRequest, kind: 'get' | 'move'): void {
    const state = { cancelled: false };
    const id = request.getMessageId();
    running.set(id, state);
    retrieve(request, kind, state)
      .catch((err: unknown) => {
        deps.log.error({ err }, `C-${kind.toUpperCase()} failed`);
        const r =
          kind === 'get' ? dimse.responses.CGetResponse.fromRequest(request as GetRequest) : dimse.responses.CMoveResponse.fromRequest(request as MoveRequest);
        r.setAffectedSopClassUid(request.getAffectedSopClassUid());
        r.setStatus(UNABLE_TO_PROCESS);
        scp.respond(request, r);
      })
      .finally(() => running.delete(id));
  }

  return {
    get: (request: GetRequest) => start(request, 'get'),
    move: (request: MoveRequest) => start(request, 'move'),
    cancel(messageId?: number): void {
      for (const [id, state] of running) if (messageId === undefined || id === messageId) state.cancelled = true;
    },
  };
}
