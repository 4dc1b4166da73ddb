import { afterAll, describe, expect, it } from 'vitest';
import { startPrivateRedis, type PrivateRedis } from '../helpers/privateRedis.js';
import { uniquePrefix } from '../helpers/redis.js';
import { bearer, createTestServer, LOGIN, REFRESH, SIGNUP, type TestServer, uniqueEmail } from '../helpers/testServer.js';
import { auditLog } from '../events/support.js';
import { outcome, PASSWORD, redisStoreAt, REVOKE, sleep, waitUntil } from './support.js';

/**
 * Redis down or hung while a change with a security event would be stored: the change fails
 * (SERVICE_UNAVAILABLE) and neither it nor its event is written, not even late; what did
 * happen has its event.
 */

const redises: PrivateRedis[] = [];
const servers: TestServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close().catch(() => undefined)));
  await Promise.all(redises.map((r) => r.dispose()));
});

async function rig() {
  const redis = await startPrivateRedis({ appendonly: true });
  redises.push(redis);
  const keyPrefix = uniquePrefix('faults-events');
  const { store } = await redisStoreAt(redis.url, keyPrefix);
  const server = await createTestServer({ store, keyPrefix, env: { REFRESH_REUSE_GRACE: '0' } });
  servers.push(server);
  await waitUntil(() => server.app.revocations.isHealthy, 5_000, 'the revocation feed');
  return { redis, server };
}

describe('security events when Redis fails', () => {
  it('a change that fails on a hung or down Redis leaves no event; the changes that happened have theirs', async () => {
    const { redis, server } = await rig();
    const email = uniqueEmail();
    const signed = (await server.graphql(SIGNUP, { email, password: PASSWORD })).data!.signup;
    const rotated = (await server.graphql(REFRESH, { t: signed.refreshToken })).data!.refreshToken;

    // Hung: every change is refused; the scripts that reach Redis late write nothing.
    redis.freeze();
    expect(outcome(await server.graphql(SIGNUP, { email: uniqueEmail(), password: PASSWORD }))).toBe('SERVICE_UNAVAILABLE');
    expect(outcome(await server.graphql(LOGIN, { email, password: PASSWORD }))).toBe('SERVICE_UNAVAILABLE');
    // A replay (the grace is off): its reuse and revocation events must not appear later either.
    expect(outcome(await server.graphql(REFRESH, { t: signed.refreshToken }))).toBe('SERVICE_UNAVAILABLE');
    expect(outcome(await server.graphql(REVOKE, {}, bearer(rotated.accessToken)))).toBe('SERVICE_UNAVAILABLE');
    await sleep(1_500);
    redis.thaw();
    await expect.poll(async () => (await fetch(`${server.url}/readyz`)).status, { timeout: 8_000, interval: 100 }).toBe(200);

    // Down: the same.
    await redis.stop('SIGKILL');
    expect(outcome(await server.graphql(LOGIN, { email, password: PASSWORD }))).toBe('SERVICE_UNAVAILABLE');
    expect(outcome(await server.graphql(REFRESH, { t: signed.refreshToken }))).toBe('SERVICE_UNAVAILABLE');
    await redis.start();
    await expect.poll(async () => (await fetch(`${server.url}/readyz`)).status, { timeout: 8_000, interval: 100 }).toBe(200);

    const events = await auditLog(server.store);
    expect(events.map((e) => e.type)).toEqual(['user.signed_up', 'session.created']);
    // The session those failed calls would have ended is still live, as its events say.
    expect(outcome(await server.graphql('{ me { id } }', {}, bearer(rotated.accessToken)))).toBe('ok');
    // And a change now is recorded.
    expect(outcome(await server.graphql(REFRESH, { t: signed.refreshToken }))).toBe('UNAUTHENTICATED/REFRESH_TOKEN_REUSED');
    expect((await auditLog(server.store)).map((e) => e.type).slice(2)).toEqual(['session.reuse_detected', 'session.revoked']);
  }, 40_000);
});
