import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import type { AuditEvent } from './db/audit.js';
import type { Logger } from './log.js';

// The audit trail's events as DICOM audit messages (PS3.15 Annex A.5, the
// IHE ATNA profile) sent to a syslog collector (AUDIT_SYSLOG): RFC 5424
// messages over UDP (RFC 5426) or TCP with octet counting (RFC 6587). The
// table in PostgreSQL stays the record; this copy is best effort, and a
// collector that is down is logged, never allowed to fail a request.

type Code = [code: string, meaning: string];

/** Cairn's actions as PS3.15 §A.5.3 events (EventID, EventActionCode, EventTypeCode). */
const EVENTS: Record<string, { id: Code; action: 'C' | 'R' | 'U' | 'D' | 'E'; type?: Code }> = {
  search: { id: ['110112', 'Query'], action: 'E' },
  retrieve: { id: ['110104', 'DICOM Instances Transferred'], action: 'R' },
  store: { id: ['110104', 'DICOM Instances Transferred'], action: 'C' },
  delete: { id: ['110105', 'DICOM Study Deleted'], action: 'D' },
  'label-read': { id: ['110103', 'DICOM Instances Accessed'], action: 'R' },
  'label-change': { id: ['110113', 'Security Alert'], action: 'E', type: ['110137', 'Object Security Attributes Changed'] },
  'audit-read': { id: ['110101', 'Audit Log Used'], action: 'R' },
  login: { id: ['110114', 'User Authentication'], action: 'E', type: ['110122', 'Login'] },
  'login-failed': { id: ['110114', 'User Authentication'], action: 'E', type: ['110122', 'Login'] },
  logout: { id: ['110114', 'User Authentication'], action: 'E', type: ['110123', 'Logout'] },
  'ae-change': { id: ['110113', 'Security Alert'], action: 'E', type: ['110136', 'Security Roles Changed'] },
};

const xml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const code = ([c, meaning]: Code, el: string) => `<${el} csd-code="${c}" codeSystemName="DCM" originalText="${xml(meaning)}"/>`;

/** EventOutcomeIndicator (PS3.15 §A.5.1): 0 success, 4 minor failure (refused, not found), 8 serious failure. */
function outcomeIndicator(e: AuditEvent): number {
  if (e.outcome === 'success') return 0;
  if (e.outcome === 'partial' || (e.status === null ? e.outcome !== 'error' : e.status < 500)) return 4;
  return 8;
}

export function auditMessage(e: AuditEvent & { at: Date }, sourceId: string): string {
  const ev = EVENTS[e.action] ?? { id: ['110100', 'Application Activity'] as Code, action: 'E' as const };
  const parts: string[] = [];
  parts.push(`<EventIdentification EventActionCode="${ev.action}" EventDateTime="${e.at.toISOString()}" EventOutcomeIndicator="${outcomeIndicator(e)}">`);
  parts.push(code(ev.id, 'EventID'));
  if (ev.type) parts.push(code(ev.type, 'EventTypeCode'));
  // A break-glass request is also an Emergency Override (PS3.16 CID 403).
  if (e.break_glass) parts.push(code(['110127', 'Emergency Override Started'], 'EventTypeCode'));
  parts.push('</EventIdentification>');
  const client = e.client ? ` NetworkAccessPointID="${xml(e.client)}" NetworkAccessPointTypeCode="2"` : '';
  parts.push(`<ActiveParticipant UserID="${xml(e.sub ?? 'anonymous')}" UserIsRequestor="true"${client}>`);
  for (const role of e.roles) parts.push(`<RoleIDCode csd-code="${xml(role)}" codeSystemName="Cairn" originalText="${xml(role)}"/>`);
  parts.push('</ActiveParticipant>');
  // The process that served the call: the HTTP request, or the protocol (DIMSE, a command).
  const served = e.method !== null ? `${e.method} ${e.path}` : e.protocol;
  parts.push(`<ActiveParticipant UserID="${xml(served)}" AlternativeUserID="${xml(sourceId)}" UserIsRequestor="false"/>`);
  parts.push(
    `<AuditSourceIdentification AuditSourceID="${xml(sourceId)}"><AuditSourceTypeCode csd-code="4" originalText="Application Server Process"/></AuditSourceIdentification>`,
  );
  for (const uid of e.study_uids) {
    parts.push(`<ParticipantObjectIdentification ParticipantObjectID="${xml(uid)}" ParticipantObjectTypeCode="2" ParticipantObjectTypeCodeRole="3">`);
    parts.push(code(['110180', 'Study Instance UID'], 'ParticipantObjectIDTypeCode'));
    if (e.instance_uids.length)
      parts.push(`<ParticipantObjectDescription><SOPClass NumberOfInstances="${e.instance_uids.length}"/></ParticipantObjectDescription>`);
    parts.push('</ParticipantObjectIdentification>');
  }
  if (e.break_glass && e.reason) {
    parts.push(
      `<ParticipantObjectIdentification ParticipantObjectID="break-glass" ParticipantObjectTypeCode="4"><ParticipantObjectIDTypeCode csd-code="110127" codeSystemName="DCM" originalText="Emergency Override Started"/><ParticipantObjectDetail type="Reason" value="${Buffer.from(e.reason).toString('base64')}"/></ParticipantObjectIdentification>`,
    );
  }
  return `<?xml version="1.0" encoding="UTF-8"?><AuditMessage>${parts.join('')}</AuditMessage>`;
}

export interface AuditSink {
  send(e: AuditEvent & { at: Date }): void;
  close(): void;
}

/** A sender for AUDIT_SYSLOG (`udp://host:port` or `tcp://host:port`). */
export function createSyslogSink(url: string, log: Logger): AuditSink {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || 514);
  const hostname = os.hostname();
  let lastComplaint = 0;
  const complain = (err: unknown) => {
    if (Date.now() - lastComplaint < 60_000) return;
    lastComplaint = Date.now();
    log.warn({ err: String(err), target: `${u.protocol}//${host}:${port}` }, 'audit message could not be sent to syslog (the audit table has it)');
  };
  // RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG; facility authpriv (10), severity notice (5).
  const frame = (e: AuditEvent & { at: Date }) =>
    Buffer.from(`<85>1 ${e.at.toISOString()} ${hostname} cairn ${process.pid} IHE+RFC-3881 - \uFEFF${auditMessage(e, hostname)}`);

  if (u.protocol === 'udp:') {
    const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    socket.on('error', complain);
    socket.unref();
    return {
      send: (e) => socket.send(frame(e), port, host, (err) => err && complain(err)),
      close: () => socket.close(),
    };
  }
  if (u.protocol !== 'tcp:') throw new Error(`AUDIT_SYSLOG must be udp://host:port or tcp://host:port, not ${url}`);
  let socket: net.Socket | undefined;
  const connection = () => {
    if (socket && !socket.destroyed) return socket;
    socket = net.connect({ host, port });
    socket.on('error', (err) => {
      complain(err);
      socket?.destroy();
    });
    socket.unref();
    return socket;
  };
  return {
    send: (e) => {
      const msg = frame(e);
      // RFC 6587 §3.4.1 octet counting: "<length> <message>".
      connection().write(Buffer.concat([Buffer.from(`${msg.length} `), msg]));
    },
    close: () => socket?.end(),
  };
}
