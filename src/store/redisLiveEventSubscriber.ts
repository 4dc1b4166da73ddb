import type { Cluster, Redis } from 'ioredis';
import type { LiveEventListener } from './types.js';
import { decodeLiveEvent } from './redisEvents.js';

/**
 * Listens on the live session events channel (redisEvents.ts LIVE_EVENT_TYPES, published by the
 * step that stores each event) over its own connection, and subscribes again after every
 * reconnect. Pub/sub is at most once: an event published while this connection is down is not
 * heard (the revocation feed, not this, is what closes a revoked session's sockets).
 */
export class RedisLiveEventSubscriber {
  private closed = false;

  constructor(
    private readonly connection: Redis | Cluster,
    private readonly channel: string,
    private readonly listener: LiveEventListener,
  ) {}

  async start(): Promise<void> {
    const c = this.connection;
    c.on('message', (channel: string, message: string) => {
      if (channel !== this.channel || this.closed) return;
      const event = decodeLiveEvent(message);
      if (!event) return;
      try {
        this.listener([event]);
      } catch {
        // A listener's failure is its own; the subscription goes on.
      }
    });
    c.on('ready', () => void this.subscribe());
    // Errors are reported by the connection's 'close'; without a listener they would be thrown.
    c.on('error', () => undefined);
    if (c.status === 'ready') await this.subscribe();
    else if (c.status === 'wait') await c.connect().catch(() => undefined);
  }

  private async subscribe(): Promise<void> {
    if (this.closed) return;
    await this.connection.subscribe(this.channel).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.connection.disconnect();
  }
}
