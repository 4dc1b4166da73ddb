import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import type { HostPort, RedisTopology } from '../config.js';
import { BOUNDED_REDIS_OPTIONS, backoff, createRedisClient } from './redisConnection.js';
import type { RedisClient } from './redisStore.js';

export interface RedisClientsOptions {
  /** Where Redis is (`config.redisTopology`). */
  topology: RedisTopology;
  /**
   * `config.redisUrl`. Required for a single server. With a Cluster or Sentinel it is optional and
   * only lends its user name, password and TLS (`rediss://`) to the data-node connections.
   */
  url: string | null;
  /** Attached to every subscriber connection created (the main client gets it from `connectInBackground`). */
  onError?: (error: unknown) => void;
}

export interface RedisClients {
  /** The store's command connection (lazy: connect it with `connectInBackground`). */
  client: RedisClient;
  /** A new connection for the revocation feed, bounded like the client. */
  createSubscriber: () => RedisClient;
}


/**
 * The Redis connections of the store for the configured topology, bounded the same way in every
 * mode (no offline queue, one attempt per command, a command timeout, background reconnection):
 * - single: one server at `url`.
 * - cluster: an ioredis Cluster on the seed nodes; every script touches one `{u:<id>}` hash
 *   tag, so it runs on the node that owns that slot. The revocation feed is a plain connection
 *   to one node (any node: Redis 7 broadcasts PUBLISH, scripts' included, to the whole cluster),
 *   moving on to the next seed node whenever it has to reconnect.
 * - sentinel: the master the sentinels name, asked again on every reconnect and at once when a
 *   sentinel announces `+switch-master`; a `READONLY` reply (a demoted master) also reconnects.
 */
export function createRedisClients(options: RedisClientsOptions): RedisClients {
  const { topology, url, onError } = options;
  const watch = <T extends RedisClient>(client: T): T => {
    if (onError) client.on('error', onError);
    return client;
  };
  switch (topology.kind) {
    case 'single': {
      if (!url) throw new Error('a single Redis server needs REDIS_URL');
      return { client: createRedisClient(url), createSubscriber: () => watch(createRedisClient(url)) };
    }
    case 'cluster': {
      const auth = credentialsFrom(url);
      return {
        client: createClusterClient(topology.nodes, auth),
        createSubscriber: () => watch(createNodeHoppingClient(topology.nodes, auth)),
      };
    }
    case 'sentinel': {
      const sentinelOptions = sentinelClientOptions(topology.sentinels, topology.name, credentialsFrom(url));
      return {
        client: withoutStaleFailoverDetector(new Redis(sentinelOptions)),
        createSubscriber: () => watch(withoutStaleFailoverDetector(new Redis(sentinelOptions))),
      };
    }
  }
}

type Credentials = Pick<RedisOptions, 'username' | 'password' | 'tls'>;

/** User, password and TLS from a redis:// or rediss:// URL (nothing without one). */
function credentialsFrom(url: string | null): Credentials {
  if (!url) return {};
  const parsed = new URL(url);
  const credentials: Credentials = {};
  if (parsed.username) credentials.username = decodeURIComponent(parsed.username);
  if (parsed.password) credentials.password = decodeURIComponent(parsed.password);
  if (parsed.protocol === 'rediss:') credentials.tls = {};
  return credentials;
}

/** BOUNDED_REDIS_OPTIONS less what a Cluster sets per node itself. */
function nodeOptions(auth: Credentials): ClusterOptions['redisOptions'] {
  const { retryStrategy: _retry, enableOfflineQueue: _queue, lazyConnect: _lazy, ...bounded } = BOUNDED_REDIS_OPTIONS;
  return { ...bounded, ...auth };
}

function createClusterClient(nodes: HostPort[], auth: Credentials): Cluster {
  return new Cluster(nodes, {
    lazyConnect: true,
    // Nothing waits for a cluster that is not ready: callers get SERVICE_UNAVAILABLE at once.
    enableOfflineQueue: false,
    enableReadyCheck: true,
    enableAutoPipelining: false,
    // Sessions must read what was just written: never a replica.
    scaleReads: 'master',
    clusterRetryStrategy: (attempt) => backoff(attempt),
    slotsRefreshTimeout: 1_000,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    // A redirected command still answers within the command timeout (it runs from the first send).
    maxRedirections: 8,
    redisOptions: nodeOptions(auth),
  });
}

/**
 * A plain bounded connection to one cluster node at a time, for pub/sub. Each reconnect moves to
 * the next node, so a node that is gone or hung is left behind. It is a plain connection, not the
 * Cluster's own subscriber, so the revocation subscriber sees every drop (and reports the feed
 * unhealthy), pings the very connection it listens on, and resubscribes itself.
 */
function createNodeHoppingClient(nodes: HostPort[], auth: Credentials): Redis {
  if (nodes.length === 0) throw new Error('REDIS_CLUSTER_NODES names no node');
  let index = Math.floor(Math.random() * nodes.length);
  const first = nodes[index]!;
  const client: Redis = new Redis({
    ...BOUNDED_REDIS_OPTIONS,
    ...auth,
    host: first.host,
    port: first.port,
    retryStrategy: (attempt) => {
      index = (index + 1) % nodes.length;
      // The connector reads host and port from these options on every connect.
      Object.assign(client.options, nodes[index]);
      return backoff(attempt);
    },
  });
  return client;
}

function sentinelClientOptions(sentinels: HostPort[], name: string, auth: Credentials): RedisOptions {
  return {
    ...BOUNDED_REDIS_OPTIONS,
    ...auth,
    ...(auth.tls ? { enableTLSForSentinelMode: true } : {}),
    sentinels,
    name,
    role: 'master',
    // Reconnect sooner than in the other modes: during a failover every try asks the sentinels
    // again, and the sooner one lands on the new master the shorter the gap.
    retryStrategy: (attempt) => backoff(attempt, 500),
    // When no sentinel answers: try them all again, at most every 2 s.
    sentinelRetryStrategy: (attempt) => backoff(attempt),
    sentinelCommandTimeout: 500,
    // Listen for +switch-master and drop the connection to a master that was replaced (it may
    // still be up, e.g. behind a partition or demoted), instead of waiting for it to fail.
    failoverDetector: true,
    sentinelReconnectStrategy: () => 2_000,
    // A write answered READONLY went to a demoted master: reconnect (asking the sentinels again);
    // the command itself fails (SERVICE_UNAVAILABLE) and is never resent.
    reconnectOnError: (error) => (/^READONLY\b/.test(error.message) ? 1 : false),
  };
}

interface SentinelConnectorInternals {
  failoverDetector?: { cleanup(): void } | null;
}

/**
 * ioredis 5 can end a Sentinel client for good in a failover. The +switch-master listener
 * (`failoverDetector`) of a connection is cleaned up only when ioredis itself disconnects, or
 * when the next connection is up: a master that died leaves its listener subscribed. When the
 * sentinels then announce the new master, that stale listener aborts the reconnection under way
 * (the client is asking a sentinel where the master is): ioredis sets the status to `end`,
 * reconnects no more, and every command fails "Connection is closed." from then on. This removes
 * the listener as soon as the connection it watches closes, so it can only act on a live one.
 */
function withoutStaleFailoverDetector(client: Redis): Redis {
  const connector = (client as unknown as { connector?: SentinelConnectorInternals }).connector;
  // Pinned ioredis: the connector has the field from its constructor (null until the first connect).
  if (!connector || !('failoverDetector' in connector)) {
    throw new Error('ioredis has no SentinelConnector.failoverDetector: check withoutStaleFailoverDetector against this version');
  }
  client.on('close', () => {
    connector.failoverDetector?.cleanup();
    connector.failoverDetector = null;
  });
  return client;
}
