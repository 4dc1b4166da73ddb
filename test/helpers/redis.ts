import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createRedisClient } from '../../src/store/redisConnection.js';
import { RedisStore } from '../../src/store/redisStore.js';

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A prefix no other test run shares, so tests only ever touch (and delete) their own keys. */
export function uniquePrefix(label = 'test'): string {
  return `tessera-${label}-${randomBytes(6).toString('hex')}:`;
}

/** A plain client for looking at what the store wrote (PTTL, HGETALL …). */
export function inspector(): Redis {
  return new Redis(TEST_REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 1 });
}

export async function deleteKeys(client: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    if (keys.length > 0) await client.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

export async function createRedisStore(prefix: string, url = TEST_REDIS_URL): Promise<RedisStore> {
  const client = createRedisClient(url);
  await client.connect();
  return new RedisStore({ client, createSubscriber: () => createRedisClient(url), keyPrefix: prefix });
}
