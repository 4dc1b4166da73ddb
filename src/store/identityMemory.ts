import type { EventDetails, EventOrigin, RevokeCause, SecurityEventType } from '../events/types.js';
import type {
  FlowRecordKind,
  IdentityRecord,
  IdentityStore,
  LinkInput,
  LinkResult,
  UnlinkResult,
} from '../identity/types.js';

/** What the embedded store lends its identities: its users, its sessions and its event writer. */
export interface MemoryIdentityHost {
  /** The user's password hash (null: none, or no such user). */
  passwordOf(userId: string): string | null | undefined;
  removePassword(userId: string): void;
  markEmailVerified(userId: string): void;
  /** Ends every session of the user (pushed on the feed); their ids. No events: the caller records them. */
  endSessions(userId: string, now: number): string[];
  record(
    step: { time: number; userId: string | null; origin: EventOrigin },
    events: readonly { type: SecurityEventType; sessionId?: string; details?: EventDetails }[],
  ): unknown;
}

/** The embedded store's identities and flow records (synchronous steps, so each is atomic). */
export class MemoryIdentities implements IdentityStore {
  private readonly byUser = new Map<string, IdentityRecord[]>();
  private readonly index = new Map<string, string>();
  private readonly flows = new Map<string, { value: string; expiresAt: number }>();

  constructor(private readonly host: MemoryIdentityHost) {}

  async findIdentity(provider: string, subject: string): Promise<IdentityRecord | null> {
    const userId = this.index.get(indexKey(provider, subject));
    const found = userId ? this.byUser.get(userId)?.find((i) => i.provider === provider && i.subject === subject) : undefined;
    return found ? { ...found } : null;
  }

  async listIdentities(userId: string): Promise<IdentityRecord[]> {
    return (this.byUser.get(userId) ?? []).map((i) => ({ ...i }));
  }

  async linkIdentity(input: LinkInput, now: number): Promise<LinkResult> {
    const { identity, origin } = input;
    const key = indexKey(identity.provider, identity.subject);
    const owner = this.index.get(key);
    if (owner !== undefined && owner !== identity.userId) return { status: 'taken' };
    const own = this.byUser.get(identity.userId) ?? [];
    const existing = own.find((i) => i.provider === identity.provider && i.subject === identity.subject);
    if (existing) return { status: 'linked', identity: { ...existing }, revokedSessionIds: [] };
    let revoked: string[] = [];
    if (input.takeOver) {
      this.host.removePassword(identity.userId);
      revoked = this.host.endSessions(identity.userId, now);
    }
    if (input.markEmailVerified) this.host.markEmailVerified(identity.userId);
    own.push({ ...identity });
    this.byUser.set(identity.userId, own);
    this.index.set(key, identity.userId);
    this.host.record({ time: now, userId: identity.userId, origin }, [
      ...revoked.map((id) => revokedEvent(id, input.takeOver!.cause)),
      { type: 'identity.linked', details: { provider: identity.provider, identityId: identity.id } },
    ]);
    return { status: 'linked', identity: { ...identity }, revokedSessionIds: revoked };
  }

  async unlinkIdentity(userId: string, identityId: string, now: number, origin: EventOrigin): Promise<UnlinkResult> {
    const own = this.byUser.get(userId) ?? [];
    const at = own.findIndex((i) => i.id === identityId);
    if (at < 0) return 'not_found';
    if (own.length === 1 && !this.host.passwordOf(userId)) return 'last_method';
    const [removed] = own.splice(at, 1);
    this.index.delete(indexKey(removed!.provider, removed!.subject));
    this.host.record({ time: now, userId, origin }, [
      { type: 'identity.unlinked', details: { provider: removed!.provider, identityId } },
    ]);
    return 'unlinked';
  }

  async deleteIdentities(userId: string): Promise<void> {
    this.eraseUser(userId);
  }

  /** deleteUser's part (MemoryStore.eraseUserOwned): the user's identities and their index entries. */
  eraseUser(userId: string): void {
    for (const identity of this.byUser.get(userId) ?? []) {
      const key = indexKey(identity.provider, identity.subject);
      if (this.index.get(key) === userId) this.index.delete(key);
    }
    this.byUser.delete(userId);
  }

  async putFlowRecord(kind: FlowRecordKind, keyHash: string, value: string, expiresAt: number, now: number): Promise<void> {
    this.sweep(now);
    this.flows.set(`${kind}:${keyHash}`, { value, expiresAt });
  }

  async takeFlowRecord(kind: FlowRecordKind, keyHash: string, now: number): Promise<string | null> {
    const key = `${kind}:${keyHash}`;
    const found = this.flows.get(key);
    this.flows.delete(key);
    return found && found.expiresAt > now ? found.value : null;
  }

  private sweep(now: number): void {
    if (this.flows.size < 1000) return;
    for (const [key, record] of this.flows) if (record.expiresAt <= now) this.flows.delete(key);
  }
}

function indexKey(provider: string, subject: string): string {
  return `${provider}\u0000${subject}`;
}

function revokedEvent(sessionId: string, cause: RevokeCause) {
  return { type: 'session.revoked' as const, sessionId, details: { cause } };
}
