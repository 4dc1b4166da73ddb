import { Redis } from 'ioredis';
import { newId } from '../../src/ids.js';
import { createRedisClient } from '../../src/store/redisConnection.js';
import { RedisStore } from '../../src/store/redisStore.js';
import { hashSecret, sealSuccessor } from '../../src/tokens/refreshTokens.js';
import { randomBytes } from 'node:crypto';
import { startRedis } from './processes.js';

export interface MemoryOptions {
  /** CONFIG SET before the sessions are made (to measure what a setting would save). */
  redisConfig?: Record<string, string>;
  /** What sessions keep as User-Agent (default: a current desktop Chrome's, 117 bytes). */
  userAgent?: string;
}

export interface MemoryFigure {
  /** What differs from the defaults (Redis settings, User-Agent), or '' for none. */
  variant: string;
  users: number;
  sessionsPerUser: number;
  sessions: number;
  /** (used_memory after − before) / sessions, for new sessions (as login leaves them). */
  bytesPerSession: number;
  /** The same once every session has been refreshed once (it then also keeps the predecessor's hash and the sealed successor). */
  bytesPerRefreshedSession: number;
}

/** What a browser sends: sessions keep the User-Agent and the client address. */
export const BENCH_USER_AGENT =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';
/** A native app's User-Agent: no browser's fragments, so it is kept as sent. */
export const APP_USER_AGENT = 'ExampleApp/3.2 (com.example.app; build:512; iOS 17.4.1) Alamofire/5.9.1';
const IP = '203.0.113.57';
const IN_FLIGHT = 64;
const DAY = 86_400_000;

/** A user record the shape signup writes (an argon2id hash of the default parameters). */
function benchUser(id: string, now: number) {
  const b64 = (n: number) => randomBytes(n).toString('base64').replace(/=+$/, '');
  return {
    id,
    email: `user-${id}@example.com`,
    passwordHash: `$argon2id$v=19$m=19456,t=2,p=1$${b64(16)}$${b64(32)}`,
    roles: ['user'],
    createdAt: now,
    emailVerified: false,
    disabled: false,
  };
}

async function usedMemory(client: Redis): Promise<number> {
  const info = await client.info('memory');
  const match = /^used_memory:(\d+)/m.exec(info);
  if (!match) throw new Error('INFO memory has no used_memory');
  return Number(match[1]);
}

/** Runs `task(i)` for i < n with at most IN_FLIGHT at a time. */
async function inParallel(n: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < n) await task(next++);
    }),
  );
}

/**
 * Creates users × sessionsPerUser sessions through the real RedisStore (the login path's
 * createSession script: the packed session record with its TTL, the user's session index) in a
 * redis-server of its own, and reports the growth of INFO used_memory per session; then
 * refreshes each once.
 */
export async function measureSessionMemory(users: number, sessionsPerUser: number, options: MemoryOptions = {}): Promise<MemoryFigure> {
  const userAgent = options.userAgent ?? BENCH_USER_AGENT;
  const redis = await startRedis();
  const client = createRedisClient(redis.url, { commandTimeout: 10_000 });
  const inspector = new Redis(redis.url);
  try {
    await client.connect();
    for (const [name, value] of Object.entries(options.redisConfig ?? {})) await inspector.config('SET', name, value);
    const store = new RedisStore({ client, createSubscriber: () => createRedisClient(redis.url), keyPrefix: 'tessera:' });
    const now = Date.now();
    // Each login also appends session.created to the audit stream and the user's own (counted).
    const origin = { ipAddress: IP, userAgent };
    const sessionInput = (userId: string, sessionId: string, secret: Buffer) => ({
      userId,
      sessionId,
      secretHash: hashSecret(secret),
      now,
      idleTtlMs: 30 * DAY,
      absoluteTtlMs: 90 * DAY,
      userAgent,
      ipAddress: IP,
      maxSessions: 100,
      origin,
      auth: { authTime: now, amr: ['pwd'], acr: 'aal1' as const },
    });
    // Loads the scripts (and warms the allocator) before the first reading.
    const warm = sessionInput(newId(), newId(), randomBytes(32));
    await store.createSession(warm);
    await store.revokeAllSessions(warm.userId, now, { origin, cause: 'all' });

    // The users exist first, as they do when they log in (their records are not counted; the
    // session index, a field of the user's record, is).
    const userIds = Array.from({ length: users }, () => newId());
    await inParallel(users, (i) => store.createUser(benchUser(userIds[i]!, now), origin));
    const total = users * sessionsPerUser;
    const created: { userId: string; sessionId: string; secret: Buffer }[] = new Array(total);
    const before = await usedMemory(inspector);
    await inParallel(total, async (i) => {
      const userId = userIds[i % users]!;
      const sessionId = newId();
      const secret = randomBytes(32);
      created[i] = { userId, sessionId, secret };
      await store.createSession(sessionInput(userId, sessionId, secret));
    });
    const afterCreate = await usedMemory(inspector);
    await inParallel(total, async (i) => {
      const { userId, sessionId, secret } = created[i]!;
      const successor = randomBytes(32);
      const result = await store.rotateSession({
        userId,
        sessionId,
        generation: 0,
        secretHash: hashSecret(secret),
        nextSecretHash: hashSecret(successor),
        sealedSuccessor: sealSuccessor(secret, successor),
        now: now + 1_000,
        idleTtlMs: 30 * DAY,
        graceMs: 10_000,
        origin,
      });
      if (result.status !== 'rotated') throw new Error(`rotation: ${result.status}`);
    });
    const afterRefresh = await usedMemory(inspector);
    const variant = [
      ...Object.entries(options.redisConfig ?? {}).map(([name, value]) => `${name} ${value}`),
      ...(options.userAgent !== undefined ? [`User-Agent of ${Buffer.byteLength(userAgent)} bytes`] : []),
    ].join(', ');
    return {
      variant,
      users,
      sessionsPerUser,
      sessions: total,
      bytesPerSession: (afterCreate - before) / total,
      bytesPerRefreshedSession: (afterRefresh - before) / total,
    };
  } finally {
    inspector.disconnect();
    client.disconnect();
    await redis.stop();
  }
}
