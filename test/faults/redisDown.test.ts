import type { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ISSUER, startRecordingOrders } from '../federation/support.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/privateRedis.js';
import { uniquePrefix } from '../helpers/redis.js';
import { bearer, createTestServer, LOGIN, REFRESH, SIGNUP, type TestServer, uniqueEmail } from '../helpers/testServer.js';
import { ME, outcome, PASSWORD, redisStoreAt, REVOKE, SESSIONS, timed, waitUntil } from './support.js';

const REVOKE_ALL = 'mutation { revokeAllSessions }';

/** A fault bound, not a benchmark: far above the 1 s command timeout, far below "hangs". */
const FAULT_BOUND_MS = 3_000;

interface ClientQueues {
  commandQueue: { length: number };
  offlineQueue: { length: number };
}

interface Rig {
  redis: PrivateRedis;
  server: TestServer;
  client: Redis;
  email: string;
  signedUp: Record<string, any>;
}

const rigs: Rig[] = [];
const redises: PrivateRedis[] = [];

afterAll(async () => {
  await Promise.all(rigs.map((rig) => rig.server.close().catch(() => undefined)));
  await Promise.all(redises.map((r) => r.dispose()));
});

/** A private Redis (AOF, fsync always, so the account made before a crash is still there after it) and a gateway on it, with one signed-up user. */
async function rig(env: Record<string, string> = {}): Promise<Rig> {
  const redis = await startPrivateRedis({ appendonly: true });
  redises.push(redis);
  const keyPrefix = uniquePrefix('faults');
  const { client, store } = await redisStoreAt(redis.url, keyPrefix);
  const server = await createTestServer({ store, keyPrefix, env });
  const made: Rig = { redis, server, client, email: uniqueEmail(), signedUp: {} };
  rigs.push(made);
  const answer = await server.graphql(SIGNUP, { email: made.email, password: PASSWORD });
  if (answer.errors.length > 0) throw new Error(JSON.stringify(answer.errors));
  made.signedUp = answer.data!.signup;
  await waitUntil(() => server.app.revocations.isHealthy, 5_000, 'the revocation feed');
  return made;
}

/**
 * With Redis down or hung: login, refresh, revoke (one session or all) and the session list answer
 * SERVICE_UNAVAILABLE with HTTP 503 within the bound, /readyz 503 with a reason.
 */
async function expectUnavailableFast({ server: s, email, signedUp }: Rig) {
  const login = await timed(() => s.graphql(LOGIN, { email, password: PASSWORD }));
  expect(outcome(login.value)).toBe('SERVICE_UNAVAILABLE');
  expect(login.value.data).toBeNull();
  const refresh = await timed(() => s.graphql(REFRESH, { t: signedUp.refreshToken }));
  expect(outcome(refresh.value)).toBe('SERVICE_UNAVAILABLE');
  const revoke = await timed(() => s.graphql(REVOKE, {}, bearer(signedUp.accessToken)));
  expect(outcome(revoke.value)).toBe('SERVICE_UNAVAILABLE');
  const revokeAll = await timed(() => s.graphql(REVOKE_ALL, {}, bearer(signedUp.accessToken)));
  expect(outcome(revokeAll.value)).toBe('SERVICE_UNAVAILABLE');
  const sessions = await timed(() => s.graphql(SESSIONS, {}, bearer(signedUp.accessToken)));
  expect(outcome(sessions.value)).toBe('SERVICE_UNAVAILABLE');
  for (const [what, { value }] of Object.entries({ login, refresh, revoke, revokeAll, sessions })) {
    expect(value.status, what).toBe(503);
  }
  const readyz = await timed(() => fetch(`${s.url}/readyz`));
  expect(readyz.value.status).toBe(503);
  expect(readyz.value.headers.get('content-type')).toMatch(/application\/json/);
  expect(await readyz.value.json()).toMatchObject({ reason: expect.any(String) });
  for (const { ms } of [login, refresh, revoke, revokeAll, sessions, readyz]) expect(ms).toBeLessThan(FAULT_BOUND_MS);
  return { login, refresh, revoke, readyz };
}

describe('Redis down, then back', () => {
  it('answers SERVICE_UNAVAILABLE quickly, readyz 503, healthz 200, no queue, then recovers by itself', async () => {
    const made = await rig();
    const { server: s, redis: r, client, email, signedUp } = made;
    await r.stop('SIGKILL');

    const { login, refresh, revoke, readyz } = await expectUnavailableFast(made);
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);

    // The feed cannot be trusted while Redis is down: requests fall back to the (down) store.
    expect(s.app.revocations.isHealthy).toBe(false);

    // A burst while down: every request answered, nothing queued for later.
    const queues = client as unknown as ClientQueues;
    let deepest = 0;
    const sampler = setInterval(() => {
      deepest = Math.max(deepest, queues.offlineQueue.length, queues.commandQueue.length);
    }, 1);
    const heapBefore = process.memoryUsage().heapUsed;
    const burst = await timed(() =>
      Promise.all(Array.from({ length: 200 }, () => s.graphql(LOGIN, { email, password: PASSWORD }))),
    );
    clearInterval(sampler);
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
    expect(new Set(burst.value.map(outcome))).toEqual(new Set(['SERVICE_UNAVAILABLE']));
    expect(burst.ms).toBeLessThan(2 * FAULT_BOUND_MS);
    expect(deepest).toBe(0);
    expect(queues.offlineQueue.length).toBe(0);
    expect(queues.commandQueue.length).toBe(0);
    // Loose: 200 answered requests are garbage, not retained state.
    expect(heapGrowth).toBeLessThan(64 * 1024 * 1024);
    console.info(
      `[faults] down: login ${login.ms.toFixed(0)} ms, refresh ${refresh.ms.toFixed(0)} ms, revoke ${revoke.ms.toFixed(0)} ms, ` +
        `readyz ${readyz.ms.toFixed(0)} ms, 200 logins ${burst.ms.toFixed(0)} ms, heap +${(heapGrowth / 1e6).toFixed(1)} MB`,
    );

    // Redis comes back on the same port: the same gateway recovers with no restart.
    const restarted = performance.now();
    await r.start();
    await expect
      .poll(async () => outcome(await s.graphql(LOGIN, { email, password: PASSWORD })), { timeout: 8_000, interval: 100 })
      .toBe('ok');
    const loginBackMs = performance.now() - restarted;
    await expect.poll(async () => (await fetch(`${s.url}/readyz`)).status, { timeout: 8_000, interval: 100 }).toBe(200);
    await expect.poll(() => s.app.revocations.isHealthy, { timeout: 8_000, interval: 50 }).toBe(true);
    const feedBackMs = performance.now() - restarted;
    console.info(`[faults] after restart: login ok in ${loginBackMs.toFixed(0)} ms, feed healthy in ${feedBackMs.toFixed(0)} ms`);

    // Nothing written before the crash was lost (AOF, fsync always), and nothing half-written by the failed calls.
    const me = await s.graphql(ME, {}, bearer(signedUp.accessToken));
    expect(me.data).toEqual({ me: { id: signedUp.user.id } });
    const refreshed = await s.graphql(REFRESH, { t: signedUp.refreshToken });
    expect(refreshed.errors).toEqual([]);
    const revoked = await s.graphql(REVOKE, {}, bearer(refreshed.data!.refreshToken.accessToken));
    expect(revoked.data).toEqual({ revokeSession: true });
  }, 30_000);
});

describe('Redis hung (connections open, no answers)', () => {
  it('answers SERVICE_UNAVAILABLE within the command timeout, queues nothing without limit, and recovers', async () => {
    const made = await rig();
    const { server: s, redis: r, client, email, signedUp } = made;
    const queues = client as unknown as ClientQueues;
    r.freeze();

    const { login, refresh, revoke, readyz } = await expectUnavailableFast(made);
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    // The heartbeat notices a feed that went silent.
    await expect.poll(() => s.app.revocations.isHealthy, { timeout: 2_000, interval: 25 }).toBe(false);

    const burst = await timed(() =>
      Promise.all(Array.from({ length: 200 }, () => s.graphql(LOGIN, { email, password: PASSWORD }))),
    );
    expect(new Set(burst.value.map(outcome))).toEqual(new Set(['SERVICE_UNAVAILABLE']));
    expect(burst.ms).toBeLessThan(2 * FAULT_BOUND_MS);
    // Every caller has its answer: no command of theirs is still waiting on the hung connection.
    const pending = queues.commandQueue.length + queues.offlineQueue.length;
    console.info(
      `[faults] hung: login ${login.ms.toFixed(0)} ms, refresh ${refresh.ms.toFixed(0)} ms, revoke ${revoke.ms.toFixed(0)} ms, ` +
        `readyz ${readyz.ms.toFixed(0)} ms, 200 logins ${burst.ms.toFixed(0)} ms, commands still pending ${pending}`,
    );
    expect(pending).toBeLessThan(10);

    r.thaw();
    await expect
      .poll(async () => outcome(await s.graphql(LOGIN, { email, password: PASSWORD })), { timeout: 8_000, interval: 100 })
      .toBe('ok');
    await expect.poll(async () => (await fetch(`${s.url}/readyz`)).status, { timeout: 8_000, interval: 100 }).toBe(200);
    await expect.poll(() => s.app.revocations.isHealthy, { timeout: 8_000, interval: 50 }).toBe(true);
    const me = await s.graphql(ME, {}, bearer(signedUp.accessToken));
    // The revoke that timed out on the hung server did not run late.
    expect(outcome(me)).toBe('ok');
  }, 30_000);
});

describe('Redis hung, in gateway mode (the auth subgraph in process, the orders subgraph remote)', () => {
  it('SERVICE_UNAVAILABLE answers are HTTP 503 there too', async () => {
    const orders = await startRecordingOrders();
    try {
      const made = await rig({ SUBGRAPHS: `orders=${orders.url}`, AUTH_ISSUER: ISSUER, LOG_LEVEL: 'warn' });
      orders.pointAt(made.server.url);
      made.redis.freeze();
      await expectUnavailableFast(made);
      made.redis.thaw();
    } finally {
      await orders.stop();
    }
  }, 30_000);
});

describe('a command that waited out its timeout on a hung Redis', () => {
  it('writes nothing when Redis wakes: the refresh the client was told failed can be retried', async () => {
    // With no reuse grace, a rotation that ran late would make the client's retry a replay.
    const { server: s, redis: r, email, signedUp } = await rig({ REFRESH_REUSE_GRACE: '0' });
    r.freeze();
    // Sent to the hung server; the caller gives up after the command timeout.
    const refresh = await s.graphql(REFRESH, { t: signedUp.refreshToken });
    expect(outcome(refresh)).toBe('SERVICE_UNAVAILABLE');
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    r.thaw();
    await expect.poll(async () => (await fetch(`${s.url}/readyz`)).status, { timeout: 8_000, interval: 100 }).toBe(200);
    const retry = await s.graphql(REFRESH, { t: signedUp.refreshToken });
    expect(outcome(retry)).toBe('ok');
    expect(outcome(await s.graphql(LOGIN, { email, password: PASSWORD }))).toBe('ok');
  }, 30_000);
});

describe('a signup that waited out its timeout on a hung Redis', () => {
  it('writes nothing when Redis wakes: the same signup succeeds afterwards', async () => {
    const { server: s, redis: r } = await rig();
    const email = uniqueEmail();
    r.freeze();
    const signup = await s.graphql(SIGNUP, { email, password: PASSWORD });
    expect(outcome(signup)).toBe('SERVICE_UNAVAILABLE');
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    r.thaw();
    await expect.poll(async () => (await fetch(`${s.url}/readyz`)).status, { timeout: 8_000, interval: 100 }).toBe(200);
    const again = await s.graphql(SIGNUP, { email, password: PASSWORD });
    expect(outcome(again)).toBe('ok');
  }, 30_000);
});
