import type { Clock } from '../clock.js';
import { forbiddenBecause, unauthenticated } from '../errors.js';

/**
 * The fresh-auth rule (docs/contract.md section 7), defined once: a field that needs fresh
 * authentication wants the access token's `auth_time` (seconds) at most `maxAge` seconds old, no
 * clock tolerance added; otherwise FORBIDDEN reason STEP_UP_REQUIRED with `extensions.maxAge`
 * (seconds). A token without `auth_time` (issued before the claim existed) is never fresh.
 * The edge check of `@tessera__fresh(maxAge:)` (section 8) uses `isFresh` with its own maxAge.
 */

/** Whether `authTimeSec` is within `maxAgeSec` of now. */
export function isFresh(authTimeSec: number | undefined, nowMs: number, maxAgeSec: number): boolean {
  return typeof authTimeSec === 'number' && Math.floor(nowMs / 1000) - authTimeSec <= maxAgeSec;
}

/** The error a stale caller gets. */
export function stepUpRequired(maxAgeSec: number, extra: Readonly<Record<string, unknown>> = {}) {
  return forbiddenBecause('STEP_UP_REQUIRED', { maxAge: maxAgeSec, ...extra });
}

/** What the rule reads of the caller: the claims of the verified access token. */
export interface FreshAuthSubject {
  claims: { auth_time?: number };
}

/** FRESH_AUTH_MAX_AGE and the clock, for the services and resolvers that need the rule. */
export class FreshAuthRule {
  readonly maxAgeSec: number;

  constructor(
    maxAgeMs: number,
    private readonly clock: Clock,
  ) {
    this.maxAgeSec = Math.floor(maxAgeMs / 1000);
  }

  /** Throws FORBIDDEN STEP_UP_REQUIRED (extensions.maxAge) unless the caller's auth_time is fresh. */
  require(subject: FreshAuthSubject): void {
    if (!isFresh(subject.claims.auth_time, this.clock.now(), this.maxAgeSec)) throw stepUpRequired(this.maxAgeSec);
  }
}

/**
 * For resolvers: the caller (or the reason there is none, as `requireUser`), who must have
 * authenticated within FRESH_AUTH_MAX_AGE.
 */
export function requireFreshAuth<U extends FreshAuthSubject>(context: {
  user: U | null;
  authFailure: Error | null;
  freshAuth: FreshAuthRule;
}): U {
  if (!context.user) throw context.authFailure ?? unauthenticated('TOKEN_MISSING');
  context.freshAuth.require(context.user);
  return context.user;
}
