import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createRedisClients } from '../../src/store/redisTopology.js';

/** What createRedisClients builds for each topology, without a server: the options that matter. */

const BOUNDED = { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 1_000, lazyConnect: true };

describe('createRedisClients', () => {
  it('single: one bounded server at REDIS_URL, and a REDIS_URL is required', () => {
    const { client, createSubscriber } = createRedisClients({ topology: { kind: 'single' }, url: 'redis://127.0.0.1:1/0' });
    expect(client).toBeInstanceOf(Redis);
    expect((client as Redis).options).toMatchObject({ ...BOUNDED, host: '127.0.0.1', port: 1 });
    const subscriber = createSubscriber() as Redis;
    expect(subscriber).not.toBe(client);
    expect(subscriber.options).toMatchObject(BOUNDED);
    expect(() => createRedisClients({ topology: { kind: 'single' }, url: null })).toThrow(/REDIS_URL/);
  });

  it('cluster: an ioredis Cluster with no offline queue, bounded nodes, reads from masters', () => {
    const config = loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:7000,10.0.0.2:7001' });
    const { client } = createRedisClients({ topology: config.redisTopology, url: 'rediss://app:s%40cret@ignored:6380' });
    expect(client).toBeInstanceOf(Cluster);
    const options = (client as Cluster).options;
    expect(options).toMatchObject({ lazyConnect: true, enableOfflineQueue: false, scaleReads: 'master' });
    expect(options.redisOptions).toMatchObject({ maxRetriesPerRequest: 0, commandTimeout: 1_000, username: 'app', password: 's@cret', tls: {} });
    expect(options.clusterRetryStrategy?.(1, new Error('x'))).toBeLessThanOrEqual(2_000);
    expect(options.clusterRetryStrategy?.(50, new Error('x'))).toBe(2_000);
  });

  it('cluster: the feed is a plain bounded connection that moves to the next node on each reconnect', () => {
    const nodes = [
      { host: '10.0.0.1', port: 7000 },
      { host: '10.0.0.2', port: 7001 },
      { host: '10.0.0.3', port: 7002 },
    ];
    const subscriber = createRedisClients({ topology: { kind: 'cluster', nodes }, url: null }).createSubscriber() as Redis;
    expect(subscriber).toBeInstanceOf(Redis);
    expect(subscriber.options).toMatchObject(BOUNDED);
    const seen = [subscriber.options.port];
    for (let attempt = 1; attempt <= 3; attempt++) {
      expect(subscriber.options.retryStrategy?.(attempt)).toBeLessThanOrEqual(2_000);
      seen.push(subscriber.options.port);
    }
    // Every node in turn, then the first again.
    expect(new Set(seen.slice(0, 3)).size).toBe(3);
    expect(seen[3]).toBe(seen[0]);
  });

  it('sentinel: the master by name, bounded, following failovers', () => {
    const config = loadConfig({ REDIS_SENTINELS: '10.0.0.1:26379,10.0.0.2:26379', REDIS_SENTINEL_NAME: 'mymaster' });
    const { client, createSubscriber } = createRedisClients({ topology: config.redisTopology, url: null });
    for (const c of [client as Redis, createSubscriber() as Redis]) {
      expect(c.options).toMatchObject({
        ...BOUNDED,
        name: 'mymaster',
        role: 'master',
        sentinels: [
          { host: '10.0.0.1', port: 26379 },
          { host: '10.0.0.2', port: 26379 },
        ],
        failoverDetector: true,
      });
      expect(c.options.reconnectOnError?.(new Error("READONLY You can't write against a read only replica."))).toBe(1);
      expect(c.options.reconnectOnError?.(new Error('ERR something else'))).toBe(false);
      expect(c.options.sentinelRetryStrategy?.(100)).toBe(2_000);
    }
  });
});
