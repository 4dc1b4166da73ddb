import type { EventOrigin } from '../events/types.js';

/**
 * The storage verbs of accounts (docs/contract.md section 7): the lifecycle and administration of
 * users. Both stores implement them (store/redisStore.ts, store/memoryStore.ts) and pass the same
 * contract tests. Each security-relevant change is one atomic step that appends its events.
 */

/** What `deleteUser` erased. */
export interface DeletedUser {
  /** The address the account had (now free to sign up again). */
  email: string;
  /** The sessions that were live and are now revoked (pushed on the revocation feed). */
  revokedSessionIds: string[];
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
}
