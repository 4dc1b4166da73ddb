import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import { jitterFactor, retryDelayMs } from './backoff.js';
import type { Delivery, EventStore, RetryBackoff } from './types.js';
import type { WebhookSender } from './webhookSender.js';

/** The consumer group every gateway instance delivers through: each event goes to one of them. */
export const WEBHOOK_GROUP = 'webhook';

export interface WebhookTimings {
  /** How often the streams are looked at when there is nothing to do. */
  pollIntervalMs: number;
  /** Entries claimed per stream per look. */
  batchSize: number;
  /** Deliveries (and per-stream claims) in flight at once. */
  concurrency: number;
  /** AUDIT_WEBHOOK_TIMEOUT: one attempt's limit. */
  timeoutMs: number;
  /** The wait after a failed first attempt; it doubles with each attempt… */
  baseDelayMs: number;
  /** … up to AUDIT_WEBHOOK_MAX_BACKOFF. */
  maxDelayMs: number;
  /** Another instance takes over a pending entry only when idle this much longer than an attempt can take. */
  claimMarginMs: number;
  /** On a Cluster: how often every audit stream is found (SCAN) and looked at, not only those known to be busy. */
  sweepIntervalMs: number;
}

export const DEFAULT_WEBHOOK_TIMINGS: Omit<WebhookTimings, 'timeoutMs' | 'maxDelayMs'> = {
  pollIntervalMs: 1_000,
  batchSize: 50,
  concurrency: 8,
  baseDelayMs: 1_000,
  claimMarginMs: 1_000,
  sweepIntervalMs: 10_000,
};

export interface WebhookDeliveryDeps {
  store: EventStore;
  sender: Pick<WebhookSender, 'send'>;
  logger: Logger;
  timings: WebhookTimings;
  clock: Clock;
  /** In [0, 1), for the backoff's jitter (tests pass their own). */
  random?: () => number;
  /** This instance's name in the consumer group (default: host, pid and a random suffix). */
  consumer?: string;
}

/** Streams that are all looked at on every poll when there are no more than this many (one server: one). */
const POLL_ALL_UP_TO = 16;

/**
 * Delivers the audit log to AUDIT_WEBHOOK_URL, at least once, through the consumer group
 * `webhook` of each audit stream (docs/events.md):
 * - a poll claims entries (store.claimDeliveries: the group's pending entries due for a retry,
 *   any instance's, then new ones), POSTs each, signed, and acknowledges those answered 2xx;
 * - a failed attempt stays pending: it is claimed again, by whichever instance looks first,
 *   once idle for its backoff (base · 2^(attempt-1), capped, with jitter, and never before an
 *   attempt in flight could have ended). That state lives in Redis, so a restart, or an
 *   instance that stopped mid-delivery, loses nothing and keeps the backoff;
 * - while the receiver fails, this instance probes with one event at a time, backing off the
 *   same way, instead of sending the whole backlog at a dead receiver;
 * - on a Redis Cluster there is one stream per slot: streams this instance just appended to
 *   (the store tells it) are looked at at once, every stream on each sweep; a missed hint only
 *   delays.
 */
export class WebhookDelivery {
  private readonly consumer: string;
  private readonly random: () => number;
  private readonly stopping = new AbortController();
  private readonly backoff: RetryBackoff;
  private known: string[] = [];
  private readonly busy = new Set<string>();
  private nextSweepAt = 0;
  private failureStreak = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private wakeAgain = false;
  private stopListening: (() => void) | undefined;

  constructor(private readonly deps: WebhookDeliveryDeps) {
    this.consumer = deps.consumer ?? `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
    this.random = deps.random ?? Math.random;
    const { timings } = deps;
    this.backoff = {
      minIdleMs: timings.timeoutMs + timings.claimMarginMs,
      baseDelayMs: timings.baseDelayMs,
      maxDelayMs: timings.maxDelayMs,
    };
  }

  start(): void {
    this.stopListening = this.deps.store.onEvents((_events, stream) => {
      this.busy.add(stream);
      this.wake();
    });
    this.schedule(0);
  }

  /** Stops polling and cuts attempts in flight (they stay pending and are retried, here after a restart or elsewhere). */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.stopListening?.();
    clearTimeout(this.timer);
    await this.running;
  }

  /** Look now (unless the receiver is failing: then the backoff decides). */
  private wake(): void {
    if (this.stopping.signal.aborted || this.failureStreak > 0) return;
    if (this.running) {
      this.wakeAgain = true;
      return;
    }
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopping.signal.aborted) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running = this.poll().finally(() => (this.running = undefined));
    }, ms);
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    let next = this.deps.timings.pollIntervalMs;
    try {
      const { more } = await this.deliverDue();
      if (this.failureStreak > 0) next = this.retryDelay(this.failureStreak);
      else if (more || this.wakeAgain) next = 0;
    } catch (error) {
      // The store is unavailable: nothing was lost (what was claimed stays pending); look later.
      this.deps.logger.warn({ err: error }, 'webhook delivery: the store did not answer; trying again');
    }
    this.wakeAgain = false;
    this.schedule(next);
  }

  private retryDelay(attempts: number): number {
    return retryDelayMs(attempts, { ...this.backoff, minIdleMs: this.deps.timings.pollIntervalMs }, jitterFactor(this.random()));
  }

  /** One look at the streams: claim, send, acknowledge. `more`: a stream had a full batch. */
  private async deliverDue(): Promise<{ more: boolean }> {
    const { store, timings } = this.deps;
    const now = Date.now();
    let targets: string[];
    if (now >= this.nextSweepAt) {
      this.known = await store.deliveryStreams();
      this.nextSweepAt = now + timings.sweepIntervalMs;
      targets = [...new Set([...this.known, ...this.busy])];
    } else {
      targets = this.known.length <= POLL_ALL_UP_TO ? [...new Set([...this.known, ...this.busy])] : [...this.busy];
    }
    const probing = this.failureStreak > 0;
    const count = probing ? 1 : timings.batchSize;
    let more = false;
    let probed = false;
    await forEachLimited(probing ? targets.slice() : targets, probing ? 1 : timings.concurrency, async (stream) => {
      if (this.stopping.signal.aborted || (probing && probed)) return;
      const claims = await store.claimDeliveries(stream, {
        group: WEBHOOK_GROUP,
        consumer: this.consumer,
        count,
        now: this.deps.clock.now(),
        backoff: this.backoff,
        jitter: jitterFactor(this.random()),
      });
      if (claims.length === 0) {
        this.busy.delete(stream);
        return;
      }
      probed = true;
      const failed = await this.send(claims);
      if (failed || claims.length === count) {
        this.busy.add(stream);
        if (!failed) more = true;
      } else {
        this.busy.delete(stream);
      }
    });
    return { more };
  }

  /** Sends claimed entries, acknowledges the delivered ones; true when any failed. */
  private async send(claims: readonly Delivery[]): Promise<boolean> {
    const { sender, store, logger, timings } = this.deps;
    const delivered: Delivery[] = [];
    const failures: { delivery: Delivery; error: string; status: number | null }[] = [];
    await forEachLimited(claims, timings.concurrency, async (delivery) => {
      const result = await sender.send(delivery.event, this.stopping.signal);
      if (result.ok) delivered.push(delivery);
      else failures.push({ delivery, error: result.error, status: result.status });
    });
    const failure = failures[0] ?? null;
    if (delivered.length > 0) await store.acknowledgeDeliveries(WEBHOOK_GROUP, delivered);
    if (failure === null) {
      if (this.failureStreak > 0) logger.info({ delivered: delivered.length }, 'webhook delivery: the receiver answers again');
      this.failureStreak = 0;
      return false;
    }
    const { delivery, error, status } = failure;
    if (this.failureStreak === 0 && !this.stopping.signal.aborted) {
      logger.warn(
        { eventId: delivery.event.id, attempt: delivery.attempt, status, error },
        'webhook delivery failed; retrying with backoff',
      );
    }
    this.failureStreak = delivered.length > 0 ? 1 : this.failureStreak + 1;
    return true;
  }
}

/** Runs `work` on every item, at most `limit` at once. */
async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
