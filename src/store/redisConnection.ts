import { type Cluster, Redis, type RedisOptions } from 'ioredis';

/** Reconnect delays: quick first tries, then at most every `capMs` (2 s), forever. */
export const backoff = (attempt: number, capMs = 2_000): number => Math.min(50 * 2 ** attempt, capMs);

/**
 * Bounded connection options: a down Redis must give callers SERVICE_UNAVAILABLE fast, not a
 * queue that grows and requests that hang. No offline queue, one attempt per command, a command
 * timeout, and reconnection in the background forever (at most every 2 s).
 * No auto-pipelining: it sent the refreshes that arrive together in one write (about a tenth
 * more throughput with 50 in flight), but ioredis keeps one such batch in flight per connection
 * and starts a queued command's timeout only when it is sent, so on a hung Redis a caller could
 * wait two timeouts instead of one before its SERVICE_UNAVAILABLE.
 */
export const BOUNDED_REDIS_OPTIONS: RedisOptions = {
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  commandTimeout: 1_000,
  connectTimeout: 2_000,
  enableAutoPipelining: false,
  autoResubscribe: false,
  retryStrategy: (attempt) => backoff(attempt),
};

export function createRedisClient(url: string, overrides: RedisOptions = {}): Redis {
  return new Redis(url, { ...BOUNDED_REDIS_OPTIONS, ...overrides });
}

/** Connects without failing the caller: a Redis that is down at start is retried in the background. */
export async function connectInBackground(client: Redis | Cluster, onError: (error: unknown) => void): Promise<void> {
  client.on('error', onError);
  if (client.status === 'wait') await client.connect().catch(onError);
}

/** ioredis's rejection when a command got no reply within `commandTimeout`. */
export function isCommandTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === 'Command timed out';
}

const dropping = new WeakSet<Redis | Cluster>();

/**
 * After a command timed out the connection cannot be trusted (a hung server, a network that
 * drops everything): every later command would wait behind the unanswered one and the queue of
 * unanswered commands would grow with every request. Drops it, so its pending commands fail at
 * once and new ones are refused until a fresh connection is ready; ioredis reconnects in the
 * background. Commands already written may still run on the server when it wakes.
 */
export function dropConnection(client: Redis | Cluster): void {
  if (dropping.has(client) || client.status !== 'ready') return;
  dropping.add(client);
  client.once('close', () => dropping.delete(client));
  client.disconnect(true);
}
