import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import { RedisKeys } from '../../src/store/redisKeys.js';
import { RedisStore } from '../../src/store/redisStore.js';
import { createRedisClient } from '../../src/store/redisConnection.js';
import { createRedisStore, deleteKeys, inspector, uniquePrefix } from '../helpers/redis.js';
import { rotation, sessionInput, storeContract, T0 } from './storeContract.js';

const prefix = uniquePrefix('store');
const keys = new RedisKeys(prefix);
const redis = inspector();
let store: RedisStore;
let peer: RedisStore;

beforeAll(async () => {
  store = await createRedisStore(prefix);
  peer = await createRedisStore(prefix);
});

afterAll(async () => {
  await store.close();
  await peer.close();
  await deleteKeys(redis, prefix);
  redis.disconnect();
});

describe('RedisStore', () => {
  storeContract({ store: () => store, peer: () => peer });

  describe('what Redis holds', () => {
    const DAY = 86_400_000;

    it('session entries expire by Redis TTL at the idle lifetime', async () => {
      const input = sessionInput({ idleTtlMs: 30 * DAY });
      await store.createSession(input);
      const pttl = await redis.pttl(keys.session(input.userId, input.sessionId));
      expect(pttl).toBeGreaterThan(30 * DAY - 5_000);
      expect(pttl).toBeLessThanOrEqual(30 * DAY);
      expect(await redis.pttl(keys.sessionIndex(input.userId))).toBeGreaterThan(30 * DAY - 5_000);
    });

    it('the TTL never goes past the absolute end, refreshed or not', async () => {
      const input = sessionInput({ idleTtlMs: 30 * DAY, absoluteTtlMs: 40 * DAY });
      await store.createSession(input);
      await store.rotateSession(rotation(input, { now: T0 + 20 * DAY }));
      const pttl = await redis.pttl(keys.session(input.userId, input.sessionId));
      // 20 days left to the absolute end, not the 30 of a fresh idle lifetime.
      expect(pttl).toBeGreaterThan(20 * DAY - 5_000);
      expect(pttl).toBeLessThanOrEqual(20 * DAY);
    });

    it('a refresh pushes the TTL forward', async () => {
      const input = sessionInput({ idleTtlMs: 1 * DAY, absoluteTtlMs: 90 * DAY });
      await store.createSession(input);
      const key = keys.session(input.userId, input.sessionId);
      await store.rotateSession(rotation(input, { now: T0 + DAY / 2, idleTtlMs: 2 * DAY }));
      expect(await redis.pttl(key)).toBeGreaterThan(2 * DAY - 5_000);
    });

    it('stores only hashes of refresh secrets', async () => {
      const input = sessionInput({ secretHash: 'only-the-hash' });
      await store.createSession(input);
      const fields = await redis.hgetall(keys.session(input.userId, input.sessionId));
      expect(fields.h).toBe('only-the-hash');
    });

    it("keeps a user's keys in one cluster slot", async () => {
      const input = sessionInput();
      const slots = await Promise.all(
        [keys.user(input.userId), keys.session(input.userId, input.sessionId), keys.sessionIndex(input.userId)].map(
          (k) => redis.call('CLUSTER', 'KEYSLOT', k).catch(() => null),
        ),
      );
      // CLUSTER KEYSLOT answers on a non-cluster server too on Redis 7; if not, compare hash tags.
      if (slots.every((s) => s !== null)) expect(new Set(slots).size).toBe(1);
      else expect(new Set([keys.user('u'), keys.sessionIndex('u')].map((k) => k.match(/\{[^}]*\}/)?.[0])).size).toBe(1);
    });

    it('index entries go when sessions end', async () => {
      const input = sessionInput({ idleTtlMs: DAY });
      await store.createSession(input);
      await store.createSession(sessionInput({ userId: input.userId, idleTtlMs: 3 * DAY }));
      expect(await redis.zcard(keys.sessionIndex(input.userId))).toBe(2);
      await store.listSessions(input.userId, T0 + 2 * DAY);
      expect(await redis.zcard(keys.sessionIndex(input.userId))).toBe(1);
      await store.revokeAllSessions(input.userId, T0 + 2 * DAY);
      expect(await redis.exists(keys.sessionIndex(input.userId))).toBe(0);
    });
  });

  describe('when Redis cannot be reached', () => {
    it('answers StoreUnavailableError at once instead of queueing', async () => {
      const client = createRedisClient('redis://127.0.0.1:1');
      client.on('error', () => undefined);
      await client.connect().catch(() => undefined);
      const down = new RedisStore({ client, createSubscriber: () => createRedisClient('redis://127.0.0.1:1'), keyPrefix: uniquePrefix('down') });
      await expect(down.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(down.createSession(sessionInput())).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(down.findUserByEmail('a@example.com')).rejects.toBeInstanceOf(StoreUnavailableError);
      client.disconnect();
    });
  });
});
