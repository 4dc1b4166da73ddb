import type { Clock } from '../clock.js';
import type { RevocationLog } from '../store/types.js';

export type RevocationStatus = 'revoked' | 'live' | 'unknown';

/** Proof that a store check began while the feed was in a given state (see `confirm`). */
export type FeedTicket = number;

/**
 * This instance's view of revoked sessions, kept current by the store's push feed, so that an
 * authenticated request in steady state needs no store round trip.
 *
 * A pushed feed can miss messages while it is down, and nothing can replay them reliably (a
 * log written beside the push can lag it). So a session counts as live only once the store has
 * confirmed it *since the feed last became healthy*: from then on, any revocation is pushed to a
 * subscribed connection. Until then (and whenever the feed is not known to be healthy) `status`
 * answers 'unknown' and the caller asks the store, then calls `confirm`. Each session costs one
 * store read after start or after an outage, and none after that.
 *
 * Revoked ids are kept for `retainMs`: the longest an access token of a revoked session can live.
 */
export class RevocationFeed {
  private readonly revoked = new Map<string, number>();
  /** Sessions the store said were live since the feed last became healthy, with when. */
  private readonly confirmed = new Map<string, number>();
  private healthy = false;
  /** Bumped on every health change: a store answer from before a change proves nothing after it. */
  private epoch = 0;
  private nextPrune = 0;
  private readonly listeners = new Set<(ids: readonly string[]) => void>();

  constructor(
    private readonly log: RevocationLog,
    private readonly clock: Clock,
    private readonly retainMs: number,
  ) {}

  async start(): Promise<void> {
    await this.log.subscribe({
      onRevoked: (ids) => this.remember(ids),
      onHealth: (healthy) => this.changeHealth(healthy),
    });
  }

  get isHealthy(): boolean {
    return this.healthy;
  }

  status(sessionId: string): RevocationStatus {
    const until = this.revoked.get(sessionId);
    if (until !== undefined && until > this.clock.now()) return 'revoked';
    return this.healthy && this.confirmed.has(sessionId) ? 'live' : 'unknown';
  }

  /** Take before asking the store, and hand to `confirm` with its answer. */
  ticket(): FeedTicket {
    return this.epoch;
  }

  /** The store said this session is live: trust the feed for it, unless the feed changed meanwhile. */
  confirm(sessionId: string, ticket: FeedTicket): void {
    if (!this.healthy || ticket !== this.epoch) return;
    this.confirmed.set(sessionId, this.clock.now());
    this.pruneIfDue();
  }

  /**
   * Called with the ids of every revocation this instance learns of (pushed, or noted after its
   * own store step), so caches keyed by session (signed context tokens) drop them at once.
   * Returns the unsubscribe function.
   */
  onRevoked(listener: (ids: readonly string[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** After the store revoked (and pushed) these sessions: honour it here at once. */
  noteRevoked(sessionIds: readonly string[]): void {
    this.remember(sessionIds);
  }

  private remember(ids: readonly string[]): void {
    const until = this.clock.now() + this.retainMs;
    for (const id of ids) {
      this.revoked.set(id, until);
      this.confirmed.delete(id);
    }
    for (const listener of this.listeners) listener(ids);
    this.pruneIfDue();
  }

  private pruneIfDue(): void {
    const now = this.clock.now();
    if (now < this.nextPrune) return;
    for (const [id, until] of this.revoked) if (until <= now) this.revoked.delete(id);
    // Forgetting a confirmation is always safe: it only costs one more store read.
    for (const [id, at] of this.confirmed) if (at + this.retainMs <= now) this.confirmed.delete(id);
    this.nextPrune = now + 60_000;
  }

  private changeHealth(healthy: boolean): void {
    this.epoch += 1;
    this.confirmed.clear();
    this.healthy = healthy;
  }
}
