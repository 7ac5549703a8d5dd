import type { Caller, CollectionScope } from '../access.js';
import type { AuditRecord } from '../audit.js';
import type { Identity } from '../auth/authenticate.js';
import type { AuthFailure } from '../auth/tokens.js';

// What Cairn's middleware leaves in ctx.state for what runs after it, typed
// once here instead of cast at every read.
declare module 'koa' {
  interface DefaultState {
    /** The audit record of this request (audit.ts), filled in as it runs. */
    audit?: AuditRecord;
    /** Who the credentials named (auth/authenticate.ts), when they were good. */
    identity?: Identity;
    /** Why the credentials were refused, when they were given and bad. */
    authFailure?: AuthFailure;
    /** A state-changing request with the session cookie lacked its CSRF token. */
    csrfFailure?: boolean;
    /** What the route's guard allowed (http/guard.ts). */
    caller?: Caller;
    /** The collection whose DICOMweb root the request came through (server/collections/scope.ts). */
    collection?: CollectionScope;
  }
}
