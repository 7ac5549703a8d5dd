import type { RouterContext } from '@koa/router';
import { auditRecordOf } from '../audit.js';
import { revokeToken } from '../db/sessions.js';
import type { AppDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import { readFields } from '../http/body.js';
import { textProblem } from '../http/client-text.js';
import { callerOf } from '../http/guard.js';

/** Why a text cannot be a token id to revoke, or undefined when it can. */
export function tokenIdProblem(jti: unknown): string | undefined {
  if (typeof jti !== 'string' || jti === '') return 'jti must be the token id (its "jti" claim), a non-empty string';
  if (jti.length > 256) return 'jti is longer than 256 characters';
  const problem = textProblem(jti);
  return problem ? `jti ${problem}` : undefined;
}

/**
 * POST /api/revoked-tokens {"jti": "…", "reason": "…"} (admin): the bearer
 * token with that id is refused from now on (on this replica at once, on the
 * others within AUTH_REVOCATION_CHECK_SECONDS), without rotating the secret.
 * 201 when revoked now, 200 when it already was.
 */
export function postRevokedToken(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const body = await readFields(ctx);
    const problem = tokenIdProblem(body.jti);
    if (problem) throw new ApiError(400, 'InvalidTokenId', problem);
    const jti = body.jti as string;
    const reason = body.reason === undefined ? null : body.reason;
    if (reason !== null && (typeof reason !== 'string' || reason.length > 500 || textProblem(reason)))
      throw new ApiError(400, 'InvalidReason', 'reason must be text of at most 500 characters');
    const done = await revokeToken(deps.db, { jti, by: callerOf(ctx).principal.sub, reason });
    ctx.state.revocation?.tokenRevokedHere(jti);
    auditRecordOf(ctx).detail = { jti, alreadyRevoked: !done, ...(reason ? { reason } : {}) };
    deps.log.info({ jti, alreadyRevoked: !done }, 'token revoked');
    ctx.status = done ? 201 : 200;
    ctx.body = { jti, revoked: true, alreadyRevoked: !done };
  };
}
