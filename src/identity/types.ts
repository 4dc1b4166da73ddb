import type { EventOrigin, RevokeCause } from '../events/types.js';

/** An identity at another provider, linked to one of our accounts. */
export interface IdentityRecord {
  /** Ours (`Identity.id`). */
  id: string;
  userId: string;
  /** The provider's `id` in IDENTITY_PROVIDERS_FILE. */
  provider: string;
  /** The provider's stable id of the person: an ID token's `sub`, GitHub's numeric user id. */
  subject: string;
  /** The email the provider gave when it was linked (null when it gave none). */
  email: string | null;
  linkedAt: number;
}

export interface LinkInput {
  identity: IdentityRecord;
  origin: EventOrigin;
  /**
   * Linking by a provider-verified email to an account whose own email was never verified:
   * in the same step, the account's password is removed and its sessions end (with this cause),
   * so an account made in advance by someone else does not survive the owner's sign-in.
   */
  takeOver: { cause: RevokeCause } | null;
  /** The link was made on the provider's assertion that the account's email is the person's: mark it verified. */
  markEmailVerified: boolean;
}

export type LinkResult =
  /** Linked now (`identity.linked` recorded), or already linked to this user (nothing changed). */
  | { status: 'linked'; identity: IdentityRecord; revokedSessionIds: string[] }
  /** The provider's subject is linked to another account: nothing was written. */
  | { status: 'taken' };

export type UnlinkResult = 'unlinked' | 'not_found' | 'last_method';

/** The short-lived records of a sign-in flow, each kept under the hash of its secret. */
export type FlowRecordKind = 'state' | 'code' | 'ticket';

/**
 * What the stores keep for sign-in with other providers (both stores run
 * test/store/identityContract.ts). The user's identities live with the user (erased with it);
 * a global index maps provider + subject to the user.
 */
export interface IdentityStore {
  findIdentity(provider: string, subject: string): Promise<IdentityRecord | null>;
  /** The user's identities, oldest first. */
  listIdentities(userId: string): Promise<IdentityRecord[]>;
  /** Records `identity.linked` (and, with takeOver, `session.revoked` for each session ended). */
  linkIdentity(input: LinkInput, now: number): Promise<LinkResult>;
  /**
   * Removes one of the user's identities, unless it is the last way to sign in (no password and
   * no other identity): `last_method`, nothing changed. Records `identity.unlinked`.
   */
  unlinkIdentity(userId: string, identityId: string, now: number, origin: EventOrigin): Promise<UnlinkResult>;
  /** Erases the user's identities and their index entries (account deletion). */
  deleteIdentities(userId: string): Promise<void>;
  /** Keeps `value` under `keyHash` until `expiresAt` (epoch ms, the caller's clock). */
  putFlowRecord(kind: FlowRecordKind, keyHash: string, value: string, expiresAt: number, now: number): Promise<void>;
  /** Reads and deletes in one step: a second call, or one after `expiresAt`, gets null. */
  takeFlowRecord(kind: FlowRecordKind, keyHash: string, now: number): Promise<string | null>;
}
