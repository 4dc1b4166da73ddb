import type { EventOrigin } from '../events/types.js';
import type { UserRecord } from '../store/types.js';
import type { MailTokenKind } from '../tokens/mailTokens.js';

/**
 * The storage verbs of accounts (docs/contract.md section 7): the lifecycle and administration of
 * users. Both stores implement them (store/redisStore.ts, store/memoryStore.ts) and pass the same
 * contract tests (test/store/accountContract.ts). Each security-relevant change is one atomic step
 * that appends its events (docs/events.md); times are the caller's clock (epoch ms).
 */

/** What `deleteUser` erased. */
export interface DeletedUser {
  /** The address the account had (now free to sign up again). */
  email: string;
  /** The sessions that were live and are now revoked (pushed on the revocation feed). */
  revokedSessionIds: string[];
}

export interface IssueMailTokenInput {
  userId: string;
  kind: MailTokenKind;
  /** hashSecret of the token's secret: the token itself is never stored. */
  secretHash: string;
  /** The address the mail goes to: the account's for reset and verify, the new one for change. The token works only for it. */
  email: string;
  ttlMs: number;
  now: number;
  origin: EventOrigin;
}

/** A presented mail token: whose, and the hash of its secret. */
export interface MailTokenProof {
  userId: string;
  secretHash: string;
  now: number;
  origin: EventOrigin;
}

export interface ChangedUser {
  user: UserRecord;
  /** Sessions the step ended (pushed on the revocation feed). */
  revokedSessionIds: string[];
}

export interface UserPage {
  users: UserRecord[];
  /** Pass as `after` for the next page; null when the page is empty. */
  endCursor: string | null;
  hasNextPage: boolean;
}

export interface AccountStore {
  /**
   * Erases the user and everything the user owns (sessions, mail tokens, the user's own events,
   * and the records other capabilities keep under the user: RedisKeys.userOwnedKeys, and the
   * MemoryStore's eraseUserOwned). Live sessions are revoked and pushed like a revoke
   * (`session.revoked` cause `deleted`), then `user.deleted`; the email is released. Null for an
   * unknown user (nothing changed).
   */
  deleteUser(userId: string, now: number, origin: EventOrigin): Promise<DeletedUser | null>;
  /** Stores a mail token (the newest of its kind; earlier ones stop working); `password.reset_requested` for a reset. False for an unknown user. */
  issueMailToken(input: IssueMailTokenInput): Promise<boolean>;
  /**
   * Spends a reset token and sets the password in one step: email verified, every session ended
   * (cause `password_reset`), `password.changed`. Null when the token does not work (nothing changed).
   */
  resetPassword(proof: MailTokenProof, passwordHash: string): Promise<ChangedUser | null>;
  /** Spends a verification token for the account's current address: verified, `email.verified`. Null when it does not work. */
  verifyEmail(proof: MailTokenProof): Promise<UserRecord | null>;
  /**
   * Spends an email-change token: the email becomes the address it was sent to (verified), the
   * old address is released, `email.changed`. 'invalid' when the token does not work, 'taken' when
   * another account has the address by now (nothing changed either way).
   */
  changeEmail(proof: MailTokenProof): Promise<{ user: UserRecord; previousEmail: string } | 'invalid' | 'taken'>;
  /** Sets a new password hash and ends every session but `keepSessionId` (cause `all`), `password.changed`. Null for an unknown user. */
  changePassword(userId: string, passwordHash: string, keepSessionId: string | null, now: number, origin: EventOrigin): Promise<ChangedUser | null>;
  /** Disables (every session ended, cause `disabled`; `user.disabled`) or enables (`user.enabled`). Null for an unknown user. */
  setUserDisabled(userId: string, disabled: boolean, now: number, origin: EventOrigin): Promise<ChangedUser | null>;
  /** New roles (tokens carry them from the next refresh), `user.roles_changed`. Null for an unknown user. */
  setUserRoles(userId: string, roles: readonly string[], now: number, origin: EventOrigin): Promise<UserRecord | null>;
  /** Users in email order, `first` of them after the cursor, optionally only emails starting with `emailPrefix`. From an index: never a scan. */
  listUsers(query: { first: number; after: string | null; emailPrefix: string | null }): Promise<UserPage>;
}
