import type { TokenRejection } from '../../errors.js';

/** `@requiresScopes(scopes:)`: any one of the inner lists, all of whose scopes are held. */
export type ScopeAlternatives = ReadonlyArray<ReadonlyArray<string>>;

/** What one type or field demands: every part must hold (directives on it combine with AND). */
export interface Requirement {
  readonly authenticated: boolean;
  readonly scopes: ReadonlyArray<ScopeAlternatives>;
  /** `@tessera__fresh(maxAge:, mfa:)` (docs/contract.md section 8): the strictest of those that apply. */
  readonly fresh?: FreshRequirement;
}

/** A sign-in at most `maxAge` seconds old (`auth_time`), and with `mfa`, at `acr` `aal2`. */
export interface FreshRequirement {
  readonly maxAge: number;
  readonly mfa: boolean;
}

/**
 * The `@authenticated` / `@requiresScopes` marks of a supergraph, built once per supergraph by
 * `collectRequirements`. Treat as opaque: keyed by type name and by `Type.field` coordinate.
 */
export interface AuthRequirements {
  readonly types: ReadonlyMap<string, Requirement>;
  readonly fields: ReadonlyMap<string, Requirement>;
}

/** Who is asking: `scopes` is the access token's space-separated `scope` claim, split. */
export interface Caller {
  authenticated: boolean;
  scopes: ReadonlySet<string>;
  /** Why there is no signed-in caller (docs/contract.md section 4 `extensions.reason`); TOKEN_MISSING if unset. */
  reason?: TokenRejection;
  /** The access token's `auth_time` (seconds); null or unset: unknown, so no field marked `@tessera__fresh` is served. */
  authTime?: number | null;
  /** The access token's `acr` (`aal1`, `aal2`). */
  acr?: string | null;
  /** Now, in epoch ms (the gateway's clock); unset: the system clock. */
  nowMs?: number;
}

export type DenialCode = 'UNAUTHENTICATED' | 'FORBIDDEN';

/** One field the caller may not see, at one response path. */
export interface Denial {
  /** Response keys (alias or field name) from the root, without list indices. */
  path: string[];
  code: DenialCode;
  message: string;
  /** The contract's `extensions.reason`: why there is no caller (UNAUTHENTICATED), or STEP_UP_REQUIRED / EMAIL_NOT_VERIFIED (FORBIDDEN). */
  reason?: TokenRejection | 'STEP_UP_REQUIRED' | 'EMAIL_NOT_VERIFIED';
  /** STEP_UP_REQUIRED: `extensions.maxAge` and `extensions.mfa`, what a new sign-in must meet. */
  stepUp?: FreshRequirement;
  /** The denied field's schema coordinate, `Type.field`. */
  coordinate: string;
  /**
   * The field was selected through a fragment on a type the caller may not see (`... on Account`
   * with `Account @authenticated`): as GraphOS Router does, it is left out of the response rather
   * than set to null, and the error is reported at the enclosing object's path.
   */
  omit?: boolean;
  /**
   * The alias of the `__typename` that stands in for the denied field in the rewritten document,
   * so applyDenials nulls it exactly where GraphQL would have resolved it.
   */
  marker: string;
  /** The declared type of each field along `path`, e.g. `[User!]!`. */
  types: string[];
}
