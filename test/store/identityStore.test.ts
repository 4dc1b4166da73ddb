import { afterAll, beforeAll, describe } from 'vitest';
import { MemoryStore } from '../../src/store/memoryStore.js';
import type { RedisStore } from '../../src/store/redisStore.js';
import { createRedisStore, deleteKeys, inspector, uniquePrefix } from '../helpers/redis.js';
import { identityContract } from './identityContract.js';

describe('MemoryStore identities', () => {
  const store = new MemoryStore();
  identityContract(() => store);
});

describe('RedisStore identities', () => {
  const prefix = uniquePrefix('identity');
  let store: RedisStore;
  beforeAll(async () => {
    store = await createRedisStore(prefix);
  });
  afterAll(async () => {
    await store.close();
    const redis = inspector();
    await deleteKeys(redis, prefix);
    redis.disconnect();
  });
  identityContract(() => store);
});
