import type { Clock } from '../clock.js';
import type { RevocationLog } from '../store/types.js';

export type RevocationStatus = 'revoked' | 'live' | 'unknown';

const RECORD_RETRIES = 5;
const CATCH_UP_RETRY_MS = 500;

/**
 * This instance's view of revoked sessions, kept current by the store's push feed, so that an
 * authenticated request needs no store round trip. While the feed is not known to be healthy
 * (not yet subscribed, reconnecting, a missed heartbeat) `status` answers 'unknown' and callers
 * ask the store. When the feed comes back it first catches up on what it may have missed.
 * Entries are kept for `retainMs`: the longest an access token of a revoked session can live.
 */
export class RevocationFeed {
  private readonly revoked = new Map<string, number>();
  private healthy = false;
  /** Bumped on every health change, so a catch-up that finishes after a newer outage does not claim health. */
  private epoch = 0;
  private nextPrune = 0;

  constructor(
    private readonly log: RevocationLog,
    private readonly clock: Clock,
    private readonly retainMs: number,
    private readonly onError: (error: unknown) => void = () => undefined,
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
    return this.healthy ? 'live' : 'unknown';
  }

  /**
   * After the store revoked (and pushed) these sessions: honour it here at once, and log it for
   * instances that will catch up later. The revocation has happened whatever becomes of the log
   * write, so a failure is reported and retried in the background, not thrown.
   */
  async announce(sessionIds: readonly string[]): Promise<void> {
    if (sessionIds.length === 0) return;
    this.remember(sessionIds);
    await this.record(sessionIds, 0);
  }

  private async record(sessionIds: readonly string[], attempt: number): Promise<void> {
    try {
      await this.log.recordRevocations(sessionIds, this.clock.now(), this.retainMs);
    } catch (error) {
      this.onError(error);
      if (attempt < RECORD_RETRIES) {
        setTimeout(() => void this.record(sessionIds, attempt + 1), 250 * 2 ** attempt).unref();
      }
    }
  }

  private remember(ids: readonly string[]): void {
    const now = this.clock.now();
    for (const id of ids) this.revoked.set(id, now + this.retainMs);
    if (now >= this.nextPrune) this.prune(now);
  }

  private prune(now: number): void {
    for (const [id, until] of this.revoked) if (until <= now) this.revoked.delete(id);
    this.nextPrune = now + 60_000;
  }

  private changeHealth(healthy: boolean): void {
    const epoch = ++this.epoch;
    this.healthy = false;
    if (healthy) void this.catchUp(epoch);
  }

  private async catchUp(epoch: number): Promise<void> {
    try {
      const missed = await this.log.recentRevocations(this.clock.now() - this.retainMs);
      this.remember(missed);
      if (epoch === this.epoch) this.healthy = true;
    } catch (error) {
      this.onError(error);
      setTimeout(() => {
        if (epoch === this.epoch) void this.catchUp(epoch);
      }, CATCH_UP_RETRY_MS).unref();
    }
  }
}
