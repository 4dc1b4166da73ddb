import type { RedisTopology } from '../../src/config.js';
import { type RedisClient, RedisStore, type RedisStoreOptions } from '../../src/store/redisStore.js';
import { createRedisClients } from '../../src/store/redisTopology.js';

/** RedisStores on a Redis Cluster or Sentinel group of the test's own, each on connections of its own. */
export interface TopologyStores {
  /** A connected store on the topology (as the gateway would make it, with no REDIS_URL). */
  open(keyPrefix: string, minReplicasAck: number, options?: Pick<RedisStoreOptions, 'auditStreamMax' | 'userEventsMax'>): Promise<RedisStore>;
  /** The command connection of a store opened here. */
  clientOf(store: RedisStore): RedisClient;
  /** Closes every store opened here (errors ignored). */
  closeAll(): Promise<void>;
}

/** `topology` is asked at each open(), so it may name what a beforeAll starts. */
export function topologyStores(topology: () => RedisTopology): TopologyStores {
  const clients = new Map<RedisStore, RedisClient>();
  return {
    async open(keyPrefix, minReplicasAck, options = {}) {
      const { client, createSubscriber } = createRedisClients({ topology: topology(), url: null, onError: () => undefined });
      client.on('error', () => undefined);
      await client.connect();
      const store = new RedisStore({ client, createSubscriber, keyPrefix, minReplicasAck, ...options });
      clients.set(store, client);
      return store;
    },
    clientOf(store) {
      const client = clients.get(store);
      if (!client) throw new Error('this store was not opened here');
      return client;
    },
    async closeAll() {
      await Promise.all([...clients.keys()].map((s) => s.close().catch(() => undefined)));
    },
  };
}
