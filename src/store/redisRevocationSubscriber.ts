import type { Cluster, Redis } from 'ioredis';
import { dropConnection, isCommandTimeout } from './redisConnection.js';

export interface RevocationHandlers {
  onRevoked(ids: string[]): void;
  onHealth(healthy: boolean): void;
}

/** How often the subscribed connection is pinged, and how long a ping may take before the feed counts as down. */
const HEARTBEAT_MS = 250;
const HEARTBEAT_TIMEOUT_MS = 500;

/**
 * Listens on the revocation channel over its own connection, and says whether it can be trusted:
 * healthy only while subscribed and answering pings, so a silent network failure is noticed
 * within HEARTBEAT_MS + HEARTBEAT_TIMEOUT_MS and callers fall back to asking the store.
 */
export class RedisRevocationSubscriber {
  private healthy = false;
  private subscribed = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly connection: Redis | Cluster,
    private readonly channel: string,
    private readonly handlers: RevocationHandlers,
  ) {}

  async start(): Promise<void> {
    const c = this.connection;
    c.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.handlers.onRevoked(message.split(',').filter(Boolean));
    });
    c.on('ready', () => void this.subscribe());
    c.on('close', () => this.lost());
    c.on('end', () => this.lost());
    c.on('error', () => this.lost());
    this.timer = setInterval(() => void this.heartbeat(), HEARTBEAT_MS);
    this.timer.unref();
    if (c.status === 'ready') await this.subscribe();
    else if (c.status === 'wait') await c.connect().catch(() => undefined);
  }

  private async subscribe(): Promise<void> {
    try {
      await this.connection.subscribe(this.channel);
      this.subscribed = true;
      this.setHealth(true);
    } catch {
      this.lost();
    }
  }

  private lost(): void {
    this.subscribed = false;
    this.setHealth(false);
  }

  private async heartbeat(): Promise<void> {
    if (!this.subscribed) return this.setHealth(false);
    const timeout = setTimeout(() => this.setHealth(false), HEARTBEAT_TIMEOUT_MS);
    try {
      await this.connection.ping();
      clearTimeout(timeout);
      if (this.subscribed) this.setHealth(true);
    } catch (error) {
      clearTimeout(timeout);
      this.setHealth(false);
      // A silent connection never recovers by itself: drop it, and the 'ready' of the new one resubscribes.
      if (isCommandTimeout(error)) dropConnection(this.connection);
    }
  }

  private setHealth(healthy: boolean): void {
    if (this.closed || healthy === this.healthy) return;
    this.healthy = healthy;
    this.handlers.onHealth(healthy);
  }

  async close(): Promise<void> {
    this.setHealth(false);
    this.closed = true;
    clearInterval(this.timer);
    this.connection.disconnect();
  }
}
