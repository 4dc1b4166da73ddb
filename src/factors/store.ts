import type { EventOrigin } from '../events/types.js';

/**
 * What second factors need from a store (docs/contract.md section 8). `RedisStore` and
 * `MemoryStore` implement it (src/store/factorsRedis.ts, src/store/factorsMemory.ts) and pass the
 * same contract test (test/store/factorContract.ts). Every record lives under the user's
 * `{u:<id>}` tag, so each step stays in one Redis Cluster slot; only passwordless challenges,
 * which have no user yet, are keyed on their own.
 *
 * Each security-relevant change is one atomic step and appends its event (`mfa.enrolled`,
 * `mfa.removed`) in that step. Times are epoch ms from the caller's clock.
 */

export type FactorKind = 'totp' | 'passkey';

export interface PasskeyData {
  /** base64url of the credential id. */
  credentialId: string;
  /** base64url of the COSE public key. */
  publicKey: string;
  transports: string[];
  /** `singleDevice` (a hardware-bound key: amr `hwk`) or `multiDevice` (a synced one: `swk`). */
  deviceType: string;
  backedUp: boolean;
}

export interface FactorRecord {
  id: string;
  userId: string;
  kind: FactorKind;
  name: string | null;
  createdAt: number;
  lastUsedAt: number | null;
  /** TOTP: the last accepted time step (a code of that step or an earlier one is refused). Passkey: the signature counter. */
  counter: number;
  /** TOTP: the base32 shared secret. */
  secret?: string;
  passkey?: PasskeyData;
}

/** How a factor was just proven; applied by the store only if it still holds (a code is not replayed). */
export type FactorUse =
  | { kind: 'totp'; factorId: string; step: number }
  | { kind: 'recovery_code'; codeHash: string }
  | { kind: 'passkey'; factorId: string; counter: number };

export interface PendingTotp {
  userId: string;
  factorId: string;
  secret: string;
  createdAt: number;
}

export interface ActivateTotpInput {
  userId: string;
  factorId: string;
  /** The step of the code that activated it: that code is spent. */
  step: number;
  /** The user's recovery codes from now on (hashes), replacing any before. */
  recoveryCodeHashes: string[];
  now: number;
  origin: EventOrigin;
}

/** A sign-in waiting for its second factor (`mfaToken`). */
export interface MfaTicketInput {
  userId: string;
  /** SHA-256 (hex) of the token's secret; the secret itself is never stored. */
  tokenHash: string;
  now: number;
  ttlMs: number;
  maxAttempts: number;
}

/** A WebAuthn challenge, single use: bound to a user (registration, second factor) or to nobody yet (passwordless). */
export interface ChallengeRef {
  userId: string | null;
  /** What it was issued for: `register`, `mfa:<ticket>`, `reauth:<session>`, `passwordless`. */
  purpose: string;
  /** base64url, as it comes back in clientDataJSON. */
  challenge: string;
}

export type CompleteMfaResult = 'ok' | 'token_invalid' | 'code_invalid';

export interface FactorStore {
  /** The user's active factors (any order). */
  listFactors(userId: string): Promise<FactorRecord[]>;
  /** How many unused recovery codes the user has. */
  countRecoveryCodes(userId: string): Promise<number>;

  /** A TOTP enrolment waiting for its first code; it disappears by itself after `ttlMs`. */
  putPendingTotp(pending: PendingTotp, ttlMs: number): Promise<void>;
  getPendingTotp(userId: string, factorId: string, now: number): Promise<PendingTotp | null>;
  /**
   * Turns the pending enrolment into an active factor whose last step is `step`, and sets the
   * recovery codes, in one step with `mfa.enrolled` (details.kind `totp`). null when nothing was
   * pending (expired, already confirmed): nothing changed then.
   */
  activateTotp(input: ActivateTotpInput): Promise<FactorRecord | null>;
  /** A registered passkey, with `mfa.enrolled` (kind `passkey`); `duplicate` when the user has that credential already. */
  addPasskey(factor: FactorRecord, origin: EventOrigin): Promise<'added' | 'duplicate'>;
  /** Replaces the user's recovery codes, with `mfa.enrolled` (kind `recovery_code`). */
  replaceRecoveryCodes(userId: string, hashes: readonly string[], now: number, origin: EventOrigin): Promise<void>;
  /**
   * Removes one factor, with `mfa.removed` (its kind); removing the last one removes the recovery
   * codes too. null when the user has no such factor.
   */
  removeFactor(userId: string, factorId: string, now: number, origin: EventOrigin): Promise<FactorKind | null>;
  /** Applies a proven use (TOTP step later than the last, recovery code unspent, passkey counter higher); false: replayed, nothing changed. */
  useFactor(userId: string, use: FactorUse, now: number): Promise<boolean>;

  createMfaTicket(input: MfaTicketInput): Promise<void>;
  /**
   * Counts one attempt on the ticket before its code is checked (so parallel guesses cannot pass
   * the limit); false when it is unknown, expired, spent or its attempts are used up (the last
   * ends it).
   */
  beginMfaAttempt(userId: string, tokenHash: string, now: number): Promise<boolean>;
  /** Applies the factor use and spends the ticket, in one step: `code_invalid` (replayed) leaves the ticket as it was. */
  completeMfa(userId: string, tokenHash: string, use: FactorUse, now: number): Promise<CompleteMfaResult>;

  putChallenge(ref: ChallengeRef, now: number, ttlMs: number): Promise<void>;
  /** Spends a challenge: true only the first time, before it expires. */
  takeChallenge(ref: ChallengeRef, now: number): Promise<boolean>;
}
