import type { EventDetails, EventOrigin, SecurityEventType } from '../events/types.js';
import type {
  ActivateTotpInput,
  ChallengeRef,
  CompleteMfaResult,
  FactorKind,
  FactorRecord,
  FactorStore,
  FactorUse,
  MfaTicketInput,
  PendingTotp,
} from '../factors/store.js';

/** How the embedded store records the events of a step (MemoryStore.record). */
export type RecordEvents = (
  step: { time: number; userId: string | null; origin: EventOrigin },
  events: readonly { type: SecurityEventType; sessionId?: string; details?: EventDetails }[],
) => void;

interface UserFactors {
  factors: Map<string, FactorRecord>;
  recovery: Set<string>;
}

/**
 * The embedded store's second factors (FactorStore): the same steps as factorsRedis.ts, each
 * synchronous (so atomic in this process), with the same events.
 */
export class MemoryFactors implements FactorStore {
  private readonly users = new Map<string, UserFactors>();
  private readonly pending = new Map<string, { value: PendingTotp; expiresAt: number }>();
  private readonly tickets = new Map<string, { attempts: number; max: number; expiresAt: number }>();
  private readonly challenges = new Map<string, number>();

  constructor(private readonly record: RecordEvents) {}

  private of(userId: string): UserFactors {
    let own = this.users.get(userId);
    if (!own) this.users.set(userId, (own = { factors: new Map(), recovery: new Set() }));
    return own;
  }

  /** Everything of the user's (deleteUser). */
  eraseUser(userId: string): void {
    this.users.delete(userId);
    for (const map of [this.pending, this.tickets, this.challenges]) {
      for (const key of map.keys()) if (key.startsWith(`${userId}|`)) map.delete(key);
    }
  }

  async listFactors(userId: string): Promise<FactorRecord[]> {
    return [...(this.users.get(userId)?.factors.values() ?? [])].map((f) => structuredClone(f));
  }

  async countRecoveryCodes(userId: string): Promise<number> {
    return this.users.get(userId)?.recovery.size ?? 0;
  }

  async putPendingTotp(pending: PendingTotp, ttlMs: number): Promise<void> {
    this.pending.set(`${pending.userId}|${pending.factorId}`, { value: { ...pending }, expiresAt: pending.createdAt + ttlMs });
  }

  async getPendingTotp(userId: string, factorId: string, now: number): Promise<PendingTotp | null> {
    const entry = this.pending.get(`${userId}|${factorId}`);
    if (!entry || entry.expiresAt <= now) return null;
    return { ...entry.value };
  }

  async activateTotp(input: ActivateTotpInput): Promise<FactorRecord | null> {
    const key = `${input.userId}|${input.factorId}`;
    const entry = this.pending.get(key);
    if (!entry || entry.expiresAt <= input.now) return null;
    this.pending.delete(key);
    const factor: FactorRecord = {
      id: input.factorId,
      userId: input.userId,
      kind: 'totp',
      name: null,
      createdAt: input.now,
      lastUsedAt: null,
      counter: input.step,
      secret: entry.value.secret,
    };
    const own = this.of(input.userId);
    own.factors.set(factor.id, factor);
    own.recovery = new Set(input.recoveryCodeHashes);
    this.record({ time: input.now, userId: input.userId, origin: input.origin }, [
      { type: 'mfa.enrolled', details: { kind: 'totp', factorId: factor.id } },
    ]);
    return structuredClone(factor);
  }

  async addPasskey(factor: FactorRecord, origin: EventOrigin): Promise<'added' | 'duplicate'> {
    const own = this.of(factor.userId);
    const id = factor.passkey?.credentialId;
    for (const existing of own.factors.values()) if (existing.passkey?.credentialId === id) return 'duplicate';
    own.factors.set(factor.id, structuredClone(factor));
    this.record({ time: factor.createdAt, userId: factor.userId, origin }, [
      { type: 'mfa.enrolled', details: { kind: 'passkey', factorId: factor.id } },
    ]);
    return 'added';
  }

  async replaceRecoveryCodes(userId: string, hashes: readonly string[], now: number, origin: EventOrigin): Promise<void> {
    this.of(userId).recovery = new Set(hashes);
    this.record({ time: now, userId, origin }, [{ type: 'mfa.enrolled', details: { kind: 'recovery_code' } }]);
  }

  async removeFactor(userId: string, factorId: string, now: number, origin: EventOrigin): Promise<FactorKind | null> {
    const own = this.users.get(userId);
    const factor = own?.factors.get(factorId);
    if (!own || !factor) return null;
    own.factors.delete(factorId);
    if (own.factors.size === 0) own.recovery.clear();
    this.record({ time: now, userId, origin }, [{ type: 'mfa.removed', details: { kind: factor.kind, factorId } }]);
    return factor.kind;
  }

  /** Whether the use still holds (read only). */
  private holds(own: UserFactors | undefined, use: FactorUse): boolean {
    if (!own) return false;
    if (use.kind === 'recovery_code') return own.recovery.has(use.codeHash);
    const factor = own.factors.get(use.factorId);
    if (!factor || factor.kind !== use.kind) return false;
    if (use.kind === 'totp') return use.step > factor.counter;
    // A counter of 0 on both sides: the authenticator keeps none. Otherwise it must grow.
    return (use.counter === 0 && factor.counter === 0) || use.counter > factor.counter;
  }

  private apply(own: UserFactors, use: FactorUse, now: number): void {
    if (use.kind === 'recovery_code') {
      own.recovery.delete(use.codeHash);
      return;
    }
    const factor = own.factors.get(use.factorId)!;
    factor.counter = use.kind === 'totp' ? use.step : use.counter;
    factor.lastUsedAt = now;
  }

  async useFactor(userId: string, use: FactorUse, now: number): Promise<boolean> {
    const own = this.users.get(userId);
    if (!this.holds(own, use)) return false;
    this.apply(own!, use, now);
    return true;
  }

  async createMfaTicket(input: MfaTicketInput): Promise<void> {
    this.sweep(input.now);
    this.tickets.set(`${input.userId}|${input.tokenHash}`, { attempts: 0, max: input.maxAttempts, expiresAt: input.now + input.ttlMs });
  }

  async beginMfaAttempt(userId: string, tokenHash: string, now: number): Promise<boolean> {
    const key = `${userId}|${tokenHash}`;
    const ticket = this.tickets.get(key);
    if (!ticket || ticket.expiresAt <= now) return false;
    ticket.attempts += 1;
    if (ticket.attempts > ticket.max) {
      this.tickets.delete(key);
      return false;
    }
    return true;
  }

  async completeMfa(userId: string, tokenHash: string, use: FactorUse, now: number): Promise<CompleteMfaResult> {
    const key = `${userId}|${tokenHash}`;
    const ticket = this.tickets.get(key);
    if (!ticket || ticket.expiresAt <= now) return 'token_invalid';
    const own = this.users.get(userId);
    if (!this.holds(own, use)) return 'code_invalid';
    this.apply(own!, use, now);
    this.tickets.delete(key);
    return 'ok';
  }

  private challengeKey(ref: ChallengeRef): string {
    return `${ref.userId ?? ''}|${ref.purpose}|${ref.challenge}`;
  }

  async putChallenge(ref: ChallengeRef, now: number, ttlMs: number): Promise<void> {
    this.sweep(now);
    this.challenges.set(this.challengeKey(ref), now + ttlMs);
  }

  async takeChallenge(ref: ChallengeRef, now: number): Promise<boolean> {
    const key = this.challengeKey(ref);
    const expiresAt = this.challenges.get(key);
    this.challenges.delete(key);
    return expiresAt !== undefined && expiresAt > now;
  }

  /** Ended tickets and challenges go, so an idle process does not keep them. */
  private sweep(now: number): void {
    for (const [key, ticket] of this.tickets) if (ticket.expiresAt <= now) this.tickets.delete(key);
    for (const [key, expiresAt] of this.challenges) if (expiresAt <= now) this.challenges.delete(key);
    for (const [key, entry] of this.pending) if (entry.expiresAt <= now) this.pending.delete(key);
  }
}
