import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import { RedisKeys } from '../../src/store/redisKeys.js';
import { decodeSession } from '../../src/store/redisRecords.js';
import { RedisStore } from '../../src/store/redisStore.js';
import { createRedisClient } from '../../src/store/redisConnection.js';
import { createRedisStore, deleteKeys, inspector, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { accountContract, userRecord } from './accountContract.js';
import { eventContract } from './eventContract.js';
import { factorContract } from './factorContract.js';
import { rotation, sessionInput, storeContract, T0, LOGOUT, ALL, TEST_ORIGIN } from './storeContract.js';

const prefix = uniquePrefix('store');
const keys = new RedisKeys(prefix);
const redis = inspector();
let store: RedisStore;
let peer: RedisStore;
/** Stores of their own (eventContract's fresh()), each on a prefix of its own. */
const freshStores: { store: RedisStore; prefix: string }[] = [];

async function freshStore(options: { auditStreamMax?: number; userEventsMax?: number } = {}): Promise<RedisStore> {
  const freshPrefix = uniquePrefix('events');
  const client = createRedisClient(TEST_REDIS_URL);
  await client.connect();
  const made = new RedisStore({ client, createSubscriber: () => createRedisClient(TEST_REDIS_URL), keyPrefix: freshPrefix, ...options });
  freshStores.push({ store: made, prefix: freshPrefix });
  return made;
}

beforeAll(async () => {
  store = await createRedisStore(prefix);
  peer = await createRedisStore(prefix);
});

afterAll(async () => {
  await store.close();
  await peer.close();
  for (const fresh of freshStores) {
    await fresh.store.close();
    await deleteKeys(redis, fresh.prefix);
  }
  await deleteKeys(redis, prefix);
  redis.disconnect();
});

describe('RedisStore', () => {
  storeContract({ store: () => store, peer: () => peer });
  accountContract({ store: () => store, peer: () => peer });

  describe('deleting a user, key by key', () => {
    it('leaves no key of the user under the prefix: every key before and after, only the audit stream keeps the deletion', async () => {
      const user = userRecord();
      await store.createUser(user, TEST_ORIGIN);
      for (let i = 0; i < 3; i++) await store.createSession(sessionInput({ userId: user.id }));
      await store.appendEvent({ type: 'login.failed', time: T0, userId: user.id, sessionId: null, origin: TEST_ORIGIN, details: {} });
      const mineBefore = (await redis.keys(`${prefix}*`)).filter((key) => key.includes(user.id) || key === keys.email(user.email));
      // The record, its event list, three sessions and the email's claim.
      expect(mineBefore.sort()).toEqual(
        [keys.user(user.id), keys.userEvents(user.id), keys.email(user.email), ...(await store.listSessions(user.id, T0 + 1)).map((s) => keys.session(user.id, s.id))].sort(),
      );
      expect(await redis.zscore(keys.usersByEmail(), `${user.email}\u0000${user.id}`)).toBe('0');
      await store.deleteUser(user.id, T0 + 1, TEST_ORIGIN);
      const mineAfter = (await redis.keys(`${prefix}*`)).filter((key) => key.includes(user.id) || key.includes(user.email));
      expect(mineAfter).toEqual([]);
      expect(await redis.zscore(keys.usersByEmail(), `${user.email}\u0000${user.id}`)).toBeNull();
    });
  });
  eventContract({ store: () => store, fresh: freshStore });
  factorContract({ store: () => store });

  describe('what Redis holds', () => {
    const DAY = 86_400_000;
    const indexOf = async (userId: string) => (await redis.hget(keys.user(userId), 's'))?.split(',') ?? [];

    it('session entries expire by Redis TTL at the idle lifetime', async () => {
      const input = sessionInput({ idleTtlMs: 30 * DAY });
      await store.createSession(input);
      const pttl = await redis.pttl(keys.session(input.userId, input.sessionId));
      expect(pttl).toBeGreaterThan(30 * DAY - 5_000);
      expect(pttl).toBeLessThanOrEqual(30 * DAY);
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

    it('keeps a session as one packed record that decodes to what was stored', async () => {
      const userAgent = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
      const hash = createHash('sha256').update('secret').digest('base64url');
      const input = sessionInput({ secretHash: hash, userAgent, ipAddress: '2001:db8::7' });
      await store.createSession(input);
      const record = (await redis.getBuffer(keys.session(input.userId, input.sessionId)))!;
      expect(decodeSession(input.userId, input.sessionId, record).session).toEqual({
        id: input.sessionId,
        userId: input.userId,
        createdAt: T0,
        lastRefreshedAt: T0,
        expiresAt: T0 + input.idleTtlMs,
        absoluteExpiresAt: T0 + input.absoluteTtlMs,
        userAgent,
        ipAddress: '2001:db8::7',
        generation: 0,
        authTime: T0,
        amr: ['pwd'],
        acr: 'aal1',
      });
      // The hash as its 32 bytes, the User-Agent compressed: the whole record (with auth_time, amr and acr) is under 110 bytes.
      expect(record.includes(Buffer.from(hash, 'base64url'))).toBe(true);
      expect(record.length).toBeLessThan(110);
    });

    it("keeps a user's keys in one cluster slot", async () => {
      const input = sessionInput();
      const slots = await Promise.all(
        [keys.user(input.userId), keys.session(input.userId, input.sessionId), keys.ackMarker(input.userId)].map((k) =>
          redis.call('CLUSTER', 'KEYSLOT', k).catch(() => null),
        ),
      );
      // CLUSTER KEYSLOT answers on a non-cluster server too on Redis 7; if not, compare hash tags.
      if (slots.every((s) => s !== null)) expect(new Set(slots).size).toBe(1);
      else expect(new Set([keys.user('u'), keys.session('u', 's')].map((k) => k.match(/\{[^}]*\}/)?.[0])).size).toBe(1);
    });

    it("the user's session index lists live sessions only: ended ones drop out on login, list and revoke", async () => {
      const short = sessionInput({ idleTtlMs: DAY });
      const long = sessionInput({ userId: short.userId, idleTtlMs: 3 * DAY });
      await store.createSession(short);
      await store.createSession(long);
      expect(await indexOf(short.userId)).toEqual([short.sessionId, long.sessionId]);
      // Redis's TTL ends the short one; the index keeps its id until the user's next index read.
      await redis.del(keys.session(short.userId, short.sessionId));
      const third = sessionInput({ userId: short.userId, now: T0 + 2 * DAY });
      await store.createSession(third);
      expect(await indexOf(short.userId)).toEqual([long.sessionId, third.sessionId]);
      await redis.del(keys.session(third.userId, third.sessionId));
      expect((await store.listSessions(short.userId, T0 + 2 * DAY)).map((s) => s.id)).toEqual([long.sessionId]);
      expect(await indexOf(short.userId)).toEqual([long.sessionId]);
      await store.revokeSession(long, T0 + 2 * DAY, LOGOUT);
      expect(await redis.hexists(keys.user(short.userId), 's')).toBe(0);
    });

    it('a record it cannot read fails the script before any write; revoking ends it all the same', async () => {
      const received: string[] = [];
      await peer.subscribe({ onRevoked: (ids) => received.push(...ids), onHealth: () => undefined });
      const a = sessionInput();
      const b = sessionInput({ userId: a.userId });
      const c = sessionInput({ userId: a.userId });
      for (const s of [a, b, c]) await store.createSession(s);
      const unreadable = Buffer.from('a record of another version');
      for (const s of [b, c]) await redis.set(keys.session(s.userId, s.sessionId), unreadable);
      // Rotating or listing it fails, having changed nothing.
      await expect(store.rotateSession(rotation(b))).rejects.toThrow(/TESSERA_RECORD/);
      await expect(store.listSessions(a.userId, T0 + 1)).rejects.toThrow(/TESSERA_RECORD/);
      expect(await redis.getBuffer(keys.session(b.userId, b.sessionId))).toEqual(unreadable);
      expect(await indexOf(a.userId)).toEqual([a.sessionId, b.sessionId, c.sessionId]);
      // Revoking never needs to read it: it is ended and pushed like a live one.
      expect(await store.revokeSession(b, T0 + 1, LOGOUT)).toBe(true);
      expect((await store.revokeAllSessions(a.userId, T0 + 1, ALL)).sort()).toEqual([a.sessionId, c.sessionId].sort());
      expect(await redis.exists(...[a, b, c].map((s) => keys.session(s.userId, s.sessionId)))).toBe(0);
      await expect.poll(() => received).toEqual(expect.arrayContaining([a.sessionId, b.sessionId, c.sessionId]));
    });

    it("revoking all of a user's sessions removes them and the index, and leaves the user's record", async () => {
      const user = { id: sessionInput().userId, email: `${randomBytes(4).toString('hex')}@example.com`, passwordHash: 'h', roles: ['user'], createdAt: T0, emailVerified: false, disabled: false };
      await store.createUser(user, TEST_ORIGIN);
      const a = sessionInput({ userId: user.id });
      const b = sessionInput({ userId: user.id });
      await store.createSession(a);
      await store.createSession(b);
      expect((await store.revokeAllSessions(user.id, T0 + 1, ALL)).sort()).toEqual([a.sessionId, b.sessionId].sort());
      expect(await redis.exists(keys.session(a.userId, a.sessionId), keys.session(b.userId, b.sessionId))).toBe(0);
      expect(await redis.hexists(keys.user(user.id), 's')).toBe(0);
      expect(await store.getUsers([user.id])).toEqual([user]);
    });

    it("keeps a user's own events in a small list in the user's slot, and every event in {prefix}audit", async () => {
      const input = sessionInput();
      await store.createSession(input);
      const own = keys.userEvents(input.userId);
      expect(await redis.type(own)).toBe('list');
      // A stream per user would cost its 4 KiB first node; the list holds one ~300-byte element.
      expect(Number(await redis.memory('USAGE', own))).toBeLessThan(1_024);
      const [element] = await redis.lrange(own, 0, 0);
      expect(element).toMatch(/^1\|\["id","[0-9A-Z]{26}-1","type","session.created"/);
      const entries = await redis.xrevrange(`${prefix}audit`, '+', '-', 'COUNT', 1);
      expect(entries[0]![1].slice(0, 4)).toEqual(['id', JSON.parse(element!.slice(2))[1], 'type', 'session.created']);
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
