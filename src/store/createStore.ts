import type { Config } from '../config.js';
import { MemoryStore } from './memoryStore.js';
import { connectInBackground, createRedisClient } from './redisConnection.js';
import { RedisStore } from './redisStore.js';
import { createRedisClients, type RedisClients } from './redisTopology.js';
import type { Store } from './types.js';

/** The settings a store is built from. */
export type StoreSettings = Pick<Config, 'redisUrl' | 'redisTopology' | 'redisKeyPrefix' | 'redisMinReplicasAck'> &
  Partial<Pick<Config, 'audit'>>;

export interface CreateStoreOptions {
  /**
   * - `background` (the server): a Redis that is down at start is retried in the background, and
   *   so is every connection lost later.
   * - `now` (a one-shot command): connect at once, or fail with StoreConnectError; a single
   *   server is tried once, a Cluster or the Sentinels for at most 5 s.
   */
  connect: 'background' | 'now';
  /** Every connection error of the store's connections (the server logs them). */
  onError?: (error: unknown) => void;
}

/** The store cannot be reached at start (CreateStoreOptions `connect: 'now'`). */
export class StoreConnectError extends Error {
  constructor(
    /** What was configured: `REDIS_URL`, `cluster` or `sentinel` (never the URL: it may carry a password). */
    readonly target: string,
    cause: unknown,
  ) {
    super(`cannot connect to Redis (${target})`, { cause });
    this.name = 'StoreConnectError';
  }
}

/** No Redis configured: the embedded in-process store (loadConfig refuses it in production). */
export function usesEmbeddedStore(settings: StoreSettings): boolean {
  return settings.redisTopology.kind === 'single' && !settings.redisUrl;
}

/** A one-shot command gives up at once instead of reconnecting in the background. */
const ONE_SHOT = { retryStrategy: () => null };
const CONNECT_NOW_TIMEOUT_MS = 5_000;

/**
 * The store the configuration names: the embedded one, or Redis (one server, a Cluster, or a
 * Sentinel-managed master). The one place a store is made from settings (src/main.ts and the CLI).
 */
export async function createStore(settings: StoreSettings, options: CreateStoreOptions): Promise<Store> {
  const auditStreamMax = settings.audit?.streamMax;
  if (usesEmbeddedStore(settings)) return new MemoryStore(auditStreamMax ? { auditStreamMax } : {});
  const { client, createSubscriber } = redisClients(settings, options);
  if (options.connect === 'background') {
    await connectInBackground(client, options.onError ?? (() => undefined));
  } else {
    await connectNow(client, settings.redisTopology.kind === 'single' ? 'REDIS_URL' : settings.redisTopology.kind, options.onError);
  }
  return new RedisStore({
    client,
    createSubscriber,
    keyPrefix: settings.redisKeyPrefix,
    minReplicasAck: settings.redisMinReplicasAck,
    ...(auditStreamMax ? { auditStreamMax } : {}),
  });
}

function redisClients(settings: StoreSettings, options: CreateStoreOptions): RedisClients {
  const { redisTopology: topology, redisUrl: url } = settings;
  if (options.connect === 'now' && topology.kind === 'single' && url) {
    return { client: createRedisClient(url, ONE_SHOT), createSubscriber: () => createRedisClient(url, ONE_SHOT) };
  }
  return createRedisClients({ topology, url, ...(options.onError ? { onError: options.onError } : {}) });
}

async function connectNow(client: RedisClients['client'], target: string, onError?: (error: unknown) => void): Promise<void> {
  let lastError: unknown;
  client.on('error', (error: unknown) => {
    lastError = error;
    onError?.(error);
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CONNECT_NOW_TIMEOUT_MS / 1000} s`)), CONNECT_NOW_TIMEOUT_MS);
  });
  try {
    await Promise.race([client.connect(), timeout]);
  } catch (error) {
    client.disconnect();
    throw new StoreConnectError(target, lastError ?? error);
  } finally {
    clearTimeout(timer);
  }
}
