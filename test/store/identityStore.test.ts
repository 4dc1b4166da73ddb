import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.js';
import { MemoryStore } from '../../src/store/memoryStore.js';
import type { RedisStore } from '../../src/store/redisStore.js';
import { createRedisStore, deleteKeys, inspector, uniquePrefix } from '../helpers/redis.js';
import { identityContract } from './identityContract.js';
import { T0, TEST_ORIGIN } from './storeContract.js';

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
  it('deleteUser removes the provider+subject index entries themselves, not only their records', async () => {
    const redis = inspector();
    const user = { id: newId(), email: `${newId().toLowerCase()}@example.com`, passwordHash: null, roles: [], createdAt: T0, emailVerified: true, disabled: false };
    await store.createUser(user, TEST_ORIGIN);
    const subject = `sub-${newId()}`;
    await store.linkIdentity(
      { identity: { id: newId(), userId: user.id, provider: 'acme', subject, email: null, linkedAt: T0 }, origin: TEST_ORIGIN, takeOver: null, markEmailVerified: false },
      T0,
    );
    expect(await redis.exists(`${prefix}idp:acme:${subject}`)).toBe(1);
    expect(await redis.exists(`${prefix}{u:${user.id}}:idp`)).toBe(1);
    await store.deleteUser(user.id, T0 + 1, TEST_ORIGIN);
    expect(await redis.exists(`${prefix}idp:acme:${subject}`)).toBe(0);
    expect(await redis.exists(`${prefix}{u:${user.id}}:idp`)).toBe(0);
    redis.disconnect();
  });
});
