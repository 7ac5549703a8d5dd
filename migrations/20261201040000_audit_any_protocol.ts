import type { Knex } from 'knex';

// The audit trail records callers of every protocol (HTTP, DIMSE, the command
// line), not only HTTP requests. A DIMSE association or a command has no
// method, path or HTTP status, so those columns may be empty, except on HTTP
// rows, which keep them all (the check below). `protocol` says which kind of
// caller a row names; the rows written before it were all HTTP.
//
// ALTER TABLE fires no row triggers, so the append-only triggers stay as they are.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`alter table audit_events
    alter column method drop not null,
    alter column path drop not null,
    alter column status drop not null,
    add column protocol text not null default 'http'`);
  await knex.raw(`alter table audit_events
    add constraint audit_events_protocol check (protocol in ('http', 'dimse', 'cli')),
    add constraint audit_events_http_request check (protocol <> 'http' or (method is not null and path is not null and status is not null))`);
}

// Fails once rows of other protocols exist: the table refuses deletes, and
// such rows cannot be given a method, path and status.
export async function down(knex: Knex): Promise<void> {
  await knex.raw(`alter table audit_events
    drop constraint audit_events_http_request,
    drop constraint audit_events_protocol,
    drop column protocol,
    alter column method set not null,
    alter column path set not null,
    alter column status set not null`);
}
