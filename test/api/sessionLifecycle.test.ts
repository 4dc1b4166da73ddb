import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import type { Store } from '../../src/store/types.js';
import { decorate } from '../helpers/decorate.js';
import { testKeySet } from '../helpers/keys.js';
import { uniquePrefix } from '../helpers/redis.js';
import { bearer, createTestServer, LOGIN, REFRESH, SIGNUP, signUp, type TestServer, uniqueEmail } from '../helpers/testServer.js';

const PASSWORD = 'correct horse battery';
const servers: TestServer[] = [];

async function start(options: Parameters<typeof createTestServer>[0] = {}): Promise<TestServer> {
  const server = await createTestServer(options);
  servers.push(server);
  return server;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const signup = (server: TestServer, email?: string) => signUp(server, email, PASSWORD);

describe('time', () => {
  it('an expired access token is refused with TOKEN_EXPIRED; refresh gets a new one', async () => {
    const clock = new ManualClock(Date.now());
    const server = await start({ clock });
    const p = await signup(server);
    clock.advance(15 * 60_000 + 6_000);
    const me = await server.graphql('{ me { id } }', {}, bearer(p.accessToken));
    expect(me.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_EXPIRED' });
    const refreshed = await server.graphql(REFRESH, { t: p.refreshToken });
    expect(refreshed.errors).toEqual([]);
    const again = await server.graphql('{ me { id } }', {}, bearer(refreshed.data!.refreshToken.accessToken));
    expect(again.data).toEqual({ me: { id: p.user.id } });
  });

  it('the old refresh token after the grace window is a replay', async () => {
    const clock = new ManualClock(Date.now());
    const server = await start({ clock, env: { REFRESH_REUSE_GRACE: '10' } });
    const p = await signup(server);
    await server.graphql(REFRESH, { t: p.refreshToken });
    clock.advance(10_001);
    const late = await server.graphql(REFRESH, { t: p.refreshToken });
    expect(late.errors[0]?.extensions.reason).toBe('REFRESH_TOKEN_REUSED');
  });

  it('a session ends at SESSION_MAX_LIFETIME however often it is refreshed', async () => {
    const clock = new ManualClock(Date.now());
    const server = await start({
      clock,
      env: { ACCESS_TOKEN_TTL: '5m', REFRESH_TOKEN_TTL: '1d', SESSION_MAX_LIFETIME: '2d' },
    });
    let p = await signup(server);
    const end = new Date(p.session.createdAt).getTime() + 2 * 86_400_000;
    for (let i = 0; i < 3; i++) {
      clock.advance(15 * 3_600_000);
      const r = await server.graphql(REFRESH, { t: p.refreshToken });
      expect(r.errors).toEqual([]);
      p = r.data!.refreshToken;
      expect(new Date(p.refreshTokenExpiresAt).getTime()).toBeLessThanOrEqual(end);
      expect(new Date(p.accessTokenExpiresAt).getTime()).toBeLessThanOrEqual(end);
    }
    clock.set(end);
    const over = await server.graphql(REFRESH, { t: p.refreshToken });
    expect(over.errors[0]?.extensions.reason).toBe('REFRESH_TOKEN_EXPIRED');
  });

  it('an idle session ends at REFRESH_TOKEN_TTL', async () => {
    const clock = new ManualClock(Date.now());
    const server = await start({ clock, env: { REFRESH_TOKEN_TTL: '1d' } });
    const p = await signup(server);
    clock.advance(86_400_000);
    const r = await server.graphql(REFRESH, { t: p.refreshToken });
    expect(r.errors[0]?.extensions.reason).toBe('REFRESH_TOKEN_EXPIRED');
  });
});

describe('login throttling', () => {
  it('after LOGIN_MAX_FAILURES failures the account is RATE_LIMITED, even with the right password', async () => {
    const clock = new ManualClock(Date.now());
    const server = await start({ clock, env: { LOGIN_MAX_FAILURES: '3', LOGIN_FAILURE_WINDOW: '15m' } });
    const email = uniqueEmail();
    await signup(server, email);
    for (let i = 0; i < 3; i++) {
      const wrong = await server.graphql(LOGIN, { email, password: 'wrong password' });
      expect(wrong.errors[0]?.extensions.reason).toBe('INVALID_CREDENTIALS');
    }
    const limited = await server.graphql(LOGIN, { email, password: PASSWORD });
    expect(limited.errors[0]?.extensions.code).toBe('RATE_LIMITED');
    expect(limited.errors[0]?.extensions.retryAfter).toBe(900);
    clock.advance(15 * 60_000);
    const ok = await server.graphql(LOGIN, { email, password: PASSWORD });
    expect(ok.errors).toEqual([]);
  });

  it('a success clears the count', async () => {
    const server = await start({ env: { LOGIN_MAX_FAILURES: '2' } });
    const email = uniqueEmail();
    await signup(server, email);
    for (let round = 0; round < 3; round++) {
      await server.graphql(LOGIN, { email, password: 'wrong password' });
      const ok = await server.graphql(LOGIN, { email, password: PASSWORD });
      expect(ok.errors).toEqual([]);
    }
  });
});

describe('configuration gates', () => {
  it('signup can be turned off', async () => {
    const server = await start({ store: 'memory', env: { SIGNUP_ENABLED: 'false' } });
    const answer = await server.graphql(SIGNUP, { email: uniqueEmail(), password: PASSWORD });
    expect(answer.errors[0]?.extensions.code).toBe('FORBIDDEN');
  });
});

describe('MAX_SESSIONS_PER_USER', () => {
  it("a login past the limit ends the user's oldest session: its tokens stop working, the others keep working", async () => {
    const server = await start({ env: { MAX_SESSIONS_PER_USER: '2' } });
    const email = uniqueEmail();
    const first = await signup(server, email);
    const login = async () => (await server.graphql(LOGIN, { email, password: PASSWORD })).data!.login;
    const second = await login();
    const third = await login();
    await expect
      .poll(async () => (await server.graphql('{ me { id } }', {}, bearer(first.accessToken))).errors[0]?.extensions.reason)
      .toBe('SESSION_REVOKED');
    expect((await server.graphql(REFRESH, { t: first.refreshToken })).errors[0]?.extensions.reason).toBe('REFRESH_TOKEN_INVALID');
    const listed = await server.graphql('{ sessions { id } }', {}, bearer(third.accessToken));
    expect(listed.data!.sessions.map((s: { id: string }) => s.id).sort()).toEqual([second.session.id, third.session.id].sort());
    expect((await server.graphql('{ me { id } }', {}, bearer(second.accessToken))).data).toEqual({ me: { id: first.user.id } });
  });
});

describe('two gateway instances sharing one Redis', () => {
  it('a session revoked through one is refused by the other within 1 s', async () => {
    const keys = await testKeySet();
    const keyPrefix = uniquePrefix('pair');
    const a = await start({ keys, keyPrefix });
    const b = await start({ keys, keyPrefix });
    await expect.poll(() => b.app.revocations.isHealthy).toBe(true);
    const p = await signup(a);
    expect((await b.graphql('{ me { id } }', {}, bearer(p.accessToken))).data).toEqual({ me: { id: p.user.id } });
    const revoked = await a.graphql('mutation { revokeSession }', {}, bearer(p.accessToken));
    expect(revoked.data).toEqual({ revokeSession: true });
    const started = Date.now();
    await expect
      .poll(async () => (await b.graphql('{ me { id } }', {}, bearer(p.accessToken))).errors[0]?.extensions.reason, {
        timeout: 1_000,
        interval: 20,
      })
      .toBe('SESSION_REVOKED');
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('while an instance has no working feed it asks the store, so revocations still hold', async () => {
    const keys = await testKeySet();
    const keyPrefix = uniquePrefix('pair');
    const { createRedisStore } = await import('../helpers/redis.js');
    const real = await createRedisStore(keyPrefix);
    // The feed of this instance never comes up: it must fall back to a store check per request.
    const deaf = decorate<Store>(real, { subscribe: async () => undefined });
    const a = await start({ keys, keyPrefix });
    const b = await start({ keys, keyPrefix, store: deaf });
    expect(b.app.revocations.isHealthy).toBe(false);
    const p = await signup(a);
    expect((await b.graphql('{ me { id } }', {}, bearer(p.accessToken))).data).toEqual({ me: { id: p.user.id } });
    await a.graphql('mutation { revokeSession }', {}, bearer(p.accessToken));
    const me = await b.graphql('{ me { id } }', {}, bearer(p.accessToken));
    expect(me.errors[0]?.extensions.reason).toBe('SESSION_REVOKED');
    // What the store said is remembered: the next request for this session needs no store read.
    expect(b.app.revocations.status(p.session.id)).toBe('revoked');
    await real.close();
  });

  it('a refresh token rotated on one is rotated for both', async () => {
    const keys = await testKeySet();
    const keyPrefix = uniquePrefix('pair');
    const a = await start({ keys, keyPrefix, env: { REFRESH_REUSE_GRACE: '0' } });
    const b = await start({ keys, keyPrefix, env: { REFRESH_REUSE_GRACE: '0' } });
    const p = await signup(a);
    const viaA = await a.graphql(REFRESH, { t: p.refreshToken });
    expect(viaA.errors).toEqual([]);
    const viaB = await b.graphql(REFRESH, { t: p.refreshToken });
    expect(viaB.errors[0]?.extensions.reason).toBe('REFRESH_TOKEN_REUSED');
  });
});

describe('batching', () => {
  it('user fields of one request are loaded in one store call', async () => {
    const calls: number[] = [];
    const { RedisStore } = await import('../../src/store/redisStore.js');
    const { createRedisStore } = await import('../helpers/redis.js');
    const keyPrefix = uniquePrefix('batch');
    const real = await createRedisStore(keyPrefix);
    const counting = decorate<Store>(real, {
      getUsers: (ids) => {
        calls.push(ids.length);
        return real.getUsers(ids);
      },
    });
    expect(real).toBeInstanceOf(RedisStore);
    const server = await start({ store: counting, keyPrefix });
    const p = await signup(server);
    const answer = await server.graphql(
      '{ a: me { email } b: me { roles createdAt } c: me { email id } }',
      {},
      bearer(p.accessToken),
    );
    expect(answer.errors).toEqual([]);
    expect(calls).toEqual([1]);
    await real.close();
  });
});
