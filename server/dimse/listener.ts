import { once } from 'node:events';
import net from 'node:net';
import { PassThrough, type Writable } from 'node:stream';
import dimse from 'dcmjs-dimse';
import { newCaller, type Caller, type Principal } from '../access.js';
import { archiveContext, receiveInstance, recordOutcomes, type StoreOutcome } from '../archive.js';
import { openAudit, recordAudit, type AuditDeps } from '../audit.js';
import type { AppDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import { createAeDirectory, identifyAe, type AeDirectory } from './aes.js';
import { deidentifiedAeWarning } from './deidentified.js';
import { part10Header } from './file-meta.js';
import { acceptedSyntax, isSupportedAbstractSyntax } from './negotiate.js';
import { storeStatus } from './status.js';
import { commitmentService } from './commitment.js';
import { findService } from './find.js';
import { retrieveService } from './retrieve.js';

// The DICOM upper-layer listener (PS3.8) beside DICOMweb: one association
// per TCP connection, each with the principal its calling AE title is
// registered as (server/dimse/aes.ts). dcmjs-dimse reads and writes the PDUs
// and DIMSE messages; Cairn adds what it lacks: the bind address, the limit
// on concurrent associations, C-STORE data sets streamed into the one store
// path as Part-10 files rather than parsed in memory, C-FIND responses sent
// as they are found, C-GET and C-MOVE sub-operations, and a graceful stop.

const { Scp, Dataset, constants } = dimse;
const { Status, PresentationContextResult, RejectResult, RejectSource, RejectReason } = constants;

// dcmjs-dimse logs every PDU to the console through loglevel: Cairn writes its own structured lines instead.
dimse.log.setLevel('silent');

export interface DimseListener {
  /** The port it listens on (the configured one, or the one picked for port 0). */
  readonly port: number;
  /** Stops accepting associations, lets those open finish for up to `graceMs`, then aborts the rest. */
  close(graceMs?: number): Promise<void>;
}

/** What one association knows of its calling side. */
export interface Peer {
  callingAe: string;
  address: string | null;
  principal: Principal;
  /** A new Caller (one per DIMSE operation, for its own audit row). */
  caller(): Caller;
}

export interface DimseDeps extends AppDeps {
  audit: AuditDeps;
  /** The calling AEs registered (server/dimse/aes.ts). */
  aes: AeDirectory;
}

type Association = InstanceType<typeof dimse.association.Association>;
type Request = InstanceType<typeof dimse.requests.Request>;

export async function startDimse(app: AppDeps): Promise<DimseListener> {
  const cfg = app.config.dimse;
  const deps: DimseDeps = { ...app, audit: openAudit(app), aes: createAeDirectory(app.db, cfg) };
  const open = new Set<InstanceType<typeof Scp>>();
  const idle = cfg.idleTimeoutSeconds * 1000;

  class CairnScp extends Scp {
    peer?: Peer;
    /** C-STORE outcomes, settled as the data set streams in, by request. */
    readonly stores = new WeakMap<object, Promise<StoreOutcome>>();
    readonly find = findService(deps, this);
    readonly retrieve = retrieveService(deps, this);
    readonly commitment = commitmentService(deps, this);

    override associationRequested(association: Association): void {
      const socket = (this as unknown as { socket: net.Socket }).socket;
      const address = socket.remoteAddress ?? null;
      const callingAe = association.getCallingAeTitle().trim();
      const refuse = (result: number, source: number, reason: number, why: string) => {
        app.log.warn({ callingAe, address, why }, 'DIMSE association refused');
        const via = { protocol: 'dimse' as const, callingAe, address };
        recordAudit(deps.audit, { via }, 'login-failed', 'denied', { why })
          .catch((err) => app.log.error({ err }, 'audit write failed'))
          .finally(() => this.sendAssociationReject(result, source, reason));
      };
      if (association.getCalledAeTitle().trim() !== cfg.aeTitle) {
        refuse(
          RejectResult.Permanent,
          RejectSource.ServiceUser,
          RejectReason.CalledAeNotRecognized,
          `called AE title ${association.getCalledAeTitle().trim()} is not ${cfg.aeTitle}`,
        );
        return;
      }
      // The registry as of at most DIMSE_AES_REFRESH_SECONDS ago (server/dimse/aes.ts): an AE
      // removed or changed is refused or acts under its new roles from its next association.
      const identify = async () => {
        const who = identifyAe(await deps.aes.current(), callingAe, address);
        // Refused by what this replica remembers: asked again, so an AE just added or moved is not turned away.
        return who.ok ? who : identifyAe(await deps.aes.recheck(), callingAe, address);
      };
      identify().then(
        (who) => {
          if (!who.ok) refuse(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CallingAeNotRecognized, who.why);
          else if (open.size > cfg.maxAssociations)
            // PS3.8 §9.3.4: transient, service-provider (presentation), local limit exceeded.
            refuse(RejectResult.Transient, RejectSource.ServiceProviderPresentation, RejectReason.LocalLimitExceeded, 'too many associations open');
          else this.admit(association, callingAe, address, who.principal);
        },
        (err: unknown) => {
          app.log.error({ err }, 'the AE registry could not be read');
          refuse(RejectResult.Transient, RejectSource.ServiceUser, RejectReason.NoReasonGiven, 'the AE registry could not be read');
        },
      );
    }

    admit(association: Association, callingAe: string, address: string | null, principal: Principal): void {
      this.peer = { callingAe, address, principal, caller: () => newCaller(principal, { protocol: 'dimse', callingAe, address }) };
      for (const { id } of association.getPresentationContexts()) {
        const pc = association.getPresentationContext(id);
        const abstract = pc.getAbstractSyntaxUid();
        const ts = acceptedSyntax(abstract, pc.getTransferSyntaxUids());
        if (ts) pc.setResult(PresentationContextResult.Accept, ts);
        else if (isSupportedAbstractSyntax(abstract)) pc.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
        else pc.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
      }
      app.log.info({ callingAe, address, sub: principal.sub }, 'DIMSE association accepted');
      this.sendAssociationAccept();
    }

    override associationReleaseRequested(): void {
      this.sendAssociationReleaseResponse();
    }

    override cEchoRequest(
      request: InstanceType<typeof dimse.requests.CEchoRequest>,
      callback: (r: InstanceType<typeof dimse.responses.CEchoResponse>) => void,
    ): void {
      const response = dimse.responses.CEchoResponse.fromRequest(request);
      response.setStatus(Status.Success);
      callback(response);
    }

    /**
     * The data set of a C-STORE streams from the PDUs straight into the store
     * path, behind the File Meta Information built for it: it is parsed once,
     * by the archive, and written byte for byte in the syntax it came in.
     */
    override createStoreWritableStream(
      context: InstanceType<typeof dimse.association.PresentationContext>,
      request: InstanceType<typeof dimse.requests.CStoreRequest>,
    ): Writable {
      const sink = new PassThrough({ highWaterMark: 1024 * 1024 });
      const peer = this.peer;
      if (!peer) {
        sink.resume();
        return sink;
      }
      // UI values are padded to even length with NUL (PS3.5 §6.2); the padding is not part of the UID.
      const announced = {
        sopClassUid: String(request.getAffectedSopClassUid() ?? '').replace(/[\0 ]+$/, ''),
        sopInstanceUid: String(request.getAffectedSopInstanceUid() ?? '').replace(/[\0 ]+$/, ''),
      };
      sink.write(
        part10Header({
          ...announced,
          transferSyntaxUid: context.getAcceptedTransferSyntaxUid() ?? '',
          sourceAe: peer.callingAe,
        }),
      );
      const caller = peer.caller();
      // The data set must be the instance the request announced, or nothing is stored.
      const outcome = receiveInstance(archiveContext(deps), caller, sink, undefined, announced)
        .then((r) => r.outcome)
        .then(async (o) => {
          recordOutcomes([o], app.log);
          await recordAudit(deps.audit, caller, 'store', o.ok ? 'success' : 'invalid', {
            sopInstanceUid: o.sopInstanceUid ?? request.getAffectedSopInstanceUid(),
          });
          return o;
        });
      // A refused store (a role without it) or a broken read still has its data set drained, so the association goes on.
      outcome.catch(() => sink.resume());
      this.stores.set(request, outcome);
      return sink;
    }

    override createDatasetFromStoreWritableStream(
      _writable: Writable,
      context: InstanceType<typeof dimse.association.PresentationContext>,
      callback: (dataset: InstanceType<typeof Dataset>) => void,
    ): void {
      // The data set went to the archive as it arrived; the request carries an empty stand-in.
      callback(new Dataset({}, context.getAcceptedTransferSyntaxUid()));
    }

    override cStoreRequest(
      request: InstanceType<typeof dimse.requests.CStoreRequest>,
      callback: (r: InstanceType<typeof dimse.responses.CStoreResponse>) => void,
    ): void {
      const response = dimse.responses.CStoreResponse.fromRequest(request);
      const pending = this.stores.get(request);
      const answer = (status: number, comment?: string) => {
        response.setStatus(status);
        if (comment) response.setErrorComment(comment.slice(0, 64));
        callback(response);
      };
      if (!pending) {
        answer(Status.ProcessingFailure, 'no association');
        return;
      }
      pending.then(
        (o) => {
          const s = storeStatus(o);
          answer(s.status, s.comment);
        },
        (err: unknown) => {
          if (err instanceof ApiError && err.status === 403) {
            const caller = this.peer?.caller();
            if (caller) void recordAudit(deps.audit, caller, 'store', 'denied', { sopInstanceUid: request.getAffectedSopInstanceUid() }).catch(() => undefined);
            answer(Status.NotAuthorized, 'the calling AE may not store');
            return;
          }
          app.log.error({ err, sopInstanceUid: request.getAffectedSopInstanceUid() }, 'C-STORE failed');
          answer(Status.ProcessingFailure);
        },
      );
    }

    override cFindRequest(request: InstanceType<typeof dimse.requests.CFindRequest>): void {
      this.find.handle(request);
    }

    override cGetRequest(request: InstanceType<typeof dimse.requests.CGetRequest>): void {
      this.retrieve.get(request);
    }

    override cMoveRequest(request: InstanceType<typeof dimse.requests.CMoveRequest>): void {
      this.retrieve.move(request);
    }

    override nActionRequest(
      request: InstanceType<typeof dimse.requests.NActionRequest>,
      callback: (r: InstanceType<typeof dimse.responses.NActionResponse>) => void,
    ): void {
      this.commitment.handle(request, callback);
    }

    override cCancelRequest(request: InstanceType<typeof dimse.requests.CCancelRequest>): void {
      const id = request.getMessageIdBeingRespondedTo();
      this.find.cancel(id);
      this.retrieve.cancel(id);
    }

    /** PS3.8 §9.2 (AA-3): an A-ABORT from the peer ends the association and its connection at once. */
    override abort(): void {
      this.find.cancel();
      this.retrieve.cancel();
      (this as unknown as { socket: net.Socket }).socket.destroy();
    }

    /** Keeps the idle timer from firing while Cairn is the one still sending (a long C-MOVE). */
    touch(): void {
      (this as unknown as { lastPduTime?: number }).lastPduTime = Date.now();
    }

    /**
     * Resolves once the responses written so far have left (the peer reads
     * as fast as it can), after a turn of the event loop in which any PDU
     * that arrived meanwhile (a C-CANCEL) is handled.
     */
    async flushed(): Promise<void> {
      const socket = (this as unknown as { socket: net.Socket }).socket;
      if (socket.writableNeedDrain && !socket.destroyed) await once(socket, 'drain').catch(() => undefined);
      await new Promise((resolve) => setImmediate(resolve));
    }

    /** Sends one response now, not after the operation ends (pending C-FIND, C-GET, C-MOVE responses). */
    respond(request: Request, response: InstanceType<typeof dimse.responses.Response>): void {
      this.touch();
      this.sendResponse(request, response);
    }
  }

  const server = net.createServer((socket) => {
    const scp = new CairnScp(socket, { connectTimeout: idle, associationTimeout: idle, pduTimeout: idle });
    (scp as unknown as { connected: boolean }).connected = true;
    open.add(scp);
    scp.on('networkError', (err: Error) => {
      app.log.warn({ err: err.message, callingAe: scp.peer?.callingAe }, 'DIMSE association ended by an error');
      socket.destroy();
    });
    socket.on('close', () => {
      open.delete(scp);
      scp.find.cancel();
      scp.retrieve.cancel();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port ?? 0, cfg.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  app.log.info({ host: cfg.host, port, aeTitle: cfg.aeTitle, aes: deps.aes.source }, 'DIMSE listening');
  // Never a default AE: until one is registered, every association is refused; say how to register one.
  const registry = await deps.aes.current().catch(() => undefined);
  if (registry && registry.aes.size === 0 && !registry.unknown)
    app.log.warn(
      { command: 'npm run ae -- add <title> --host <address> --roles <role,…>' },
      deps.aes.source === 'database'
        ? 'no calling AE is registered: every association is refused until one is added with npm run ae or /api/aes'
        : 'DIMSE_AES registers no calling AE: every association is refused',
    );
  if (registry) {
    const entries: [string, Principal][] = [...registry.aes.values()].map((ae) => [ae.title, ae.principal]);
    if (registry.unknown) entries.push(['*', registry.unknown]);
    for (const [title, principal] of entries) {
      const warning = deidentifiedAeWarning(app.research, title, principal);
      if (warning) app.log.warn({ callingAe: title }, warning);
    }
  }
  return {
    port,
    async close(graceMs = 10_000) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const timer = setTimeout(() => {
        for (const scp of open) (scp as unknown as { socket: net.Socket }).socket.destroy();
      }, graceMs);
      await closed;
      clearTimeout(timer);
      deps.audit.syslog?.close?.();
    },
  };
}

export type CairnScp = InstanceType<typeof Scp> & {
  peer?: Peer;
  touch(): void;
  flushed(): Promise<void>;
  respond(request: Request, response: InstanceType<typeof dimse.responses.Response>): void;
};
