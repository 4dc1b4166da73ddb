import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { MemoryStore } from '../../src/store/memoryStore.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/privateRedis.js';
import { createRedisStore, uniquePrefix } from '../helpers/redis.js';
import { bearer, createTestServer, LOGIN, REFRESH, signUp, TEST_PASSWORD, type TestServer } from '../helpers/testServer.js';
import { bearerPayload, connect, SESSION_EVENTS, waitFor, type WsClient } from './support.js';

const servers: TestServer[] = [];
const redises: PrivateRedis[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close().catch(() => undefined)));
  await Promise.all(redises.map((r) => r.dispose()));
});

function track(server: TestServer): TestServer {
  servers.push(server);
  return server;
}

/** Two gateway instances on one Redis (one key prefix, as a deployment shares it). */
async function twoInstances(env: Record<string, string> = {}): Promise<[TestServer, TestServer]> {
  const keyPrefix = uniquePrefix('realtime');
  const keys = await import('../helpers/keys.js').then((m) => m.testKeySet());
  const a = track(await createTestServer({ keyPrefix, keys, env }));
  const b = track(await createTestServer({ keyPrefix, keys, env, store: await createRedisStore(keyPrefix) }));
  await waitFor('both revocation feeds', () => a.app.revocations.isHealthy && b.app.revocations.isHealthy);
  return [a, b];
}

/** A signed-in connection with a running sessionEvents subscription `s`. */
async function listening(server: TestServer, accessToken: string): Promise<WsClient> {
  const ws = connect(server);
  await ws.init(bearerPayload(accessToken));
  ws.subscribe('s', SESSION_EVENTS);
  // Frames are handled in order: once this query is answered the subscription is running.
  ws.subscribe('ready', '{ __typename }');
  await ws.event('ready');
  return ws;
}

describe('session events across instances (one Redis)', () => {
  it('revokeSession on A closes B’s socket with 4403 after SESSION_REVOKED; B’s other sessions hear SIGNED_IN_ELSEWHERE from A', async () => {
    const [a, b] = await twoInstances();
    const me = await signUp(a);
    const onB = await listening(b, me.accessToken);
    const second = (await a.graphql(LOGIN, { email: me.user.email, password: TEST_PASSWORD }, { 'user-agent': 'Phone/2' })).data!.login;
    const elsewhere = (await onB.event('s')).data.sessionEvents;
    expect(elsewhere).toMatchObject({ type: 'SIGNED_IN_ELSEWHERE', sessionId: second.session.id, userAgent: 'Phone/2' });

    // The second session's own connection on B, and one more for the first on A.
    const secondOnB = await listening(b, second.accessToken);
    const onA = await listening(a, me.accessToken);
    const revoke = await a.graphql('mutation { revokeSession }', {}, bearer(me.accessToken, ));
    expect(revoke.data).toEqual({ revokeSession: true });
    for (const ws of [onB, onA]) {
      const last = (await ws.event('s')).data.sessionEvents;
      expect(last).toMatchObject({ type: 'SESSION_REVOKED', sessionId: me.session.id, ipAddress: '127.0.0.1' });
      expect(await ws.closed).toEqual({ code: 4403, reason: 'SESSION_REVOKED' });
    }
    // The other session's socket stays open and serves.
    secondOnB.subscribe('q', '{ me { id } }');
    expect((await secondOnB.event('q')).data.me.id).toBe(me.user.id);
    secondOnB.close();
  });

  it('revokeAllSessions and a refresh-token replay close every affected socket on both instances', async () => {
    const [a, b] = await twoInstances({ REFRESH_REUSE_GRACE: '0' });
    const me = await signUp(a);
    const second = (await b.graphql(LOGIN, { email: me.user.email, password: TEST_PASSWORD })).data!.login;
    const sockets = [await listening(a, me.accessToken), await listening(b, me.accessToken), await listening(b, second.accessToken)];
    const all = await b.graphql('mutation { revokeAllSessions }', {}, bearer(second.accessToken));
    expect(all.data).toEqual({ revokeAllSessions: 2 });
    for (const ws of sockets) expect((await ws.closed).code).toBe(4403);

    // A replayed refresh token revokes its session (section 3.3): its sockets close too.
    const third = (await a.graphql(LOGIN, { email: me.user.email, password: TEST_PASSWORD })).data!.login;
    const rotated = await a.graphql(REFRESH, { t: third.refreshToken });
    const live = await listening(b, rotated.data!.refreshToken.accessToken);
    const replay = await a.graphql(REFRESH, { t: third.refreshToken });
    expect(replay.errors[0]!.extensions).toMatchObject({ reason: 'REFRESH_TOKEN_REUSED' });
    const last = (await live.event('s')).data.sessionEvents;
    expect(last).toMatchObject({ type: 'SESSION_REVOKED', sessionId: third.session.id });
    expect((await live.closed).code).toBe(4403);
  });
});

describe('account changes (section 7) reach the sockets', () => {
  it.each(['memory', 'redis'] as const)('%s: changePassword sends PASSWORD_CHANGED here and closes the other sessions 4403; deleteAccount closes 4403', async (store) => {
    const s = track(await createTestServer({ store }));
    const me = await signUp(s);
    const other = (await s.graphql(LOGIN, { email: me.user.email, password: TEST_PASSWORD })).data!.login;
    const mine = await listening(s, me.accessToken);
    const theirs = await listening(s, other.accessToken);
    const changed = await s.graphql('mutation($p: String!) { changePassword(newPassword: $p) }', { p: 'a brand new passphrase' }, bearer(me.accessToken));
    expect(changed.data).toEqual({ changePassword: true });
    expect((await mine.event('s')).data.sessionEvents).toMatchObject({ type: 'PASSWORD_CHANGED', ipAddress: '127.0.0.1' });
    expect((await theirs.event('s')).data.sessionEvents.type).toBe('SESSION_REVOKED');
    expect((await theirs.closed).code).toBe(4403);

    const deleted = await s.graphql('mutation { deleteAccount }', {}, bearer(me.accessToken));
    expect(deleted.data).toEqual({ deleteAccount: true });
    expect((await mine.closed).code).toBe(4403);
  });
});

describe('expiry and renewal (injected clock)', () => {
  it.each(['memory', 'redis'] as const)('%s: ACCESS_TOKEN_EXPIRING 60 s before exp, close 4401 at exp + CLOCK_TOLERANCE unless renewed', async (store) => {
    const clock = new ManualClock(Date.now());
    const s = track(await createTestServer({ store, clock, env: { ACCESS_TOKEN_TTL: '5m', CLOCK_TOLERANCE: '5s' } }));
    const me = await signUp(s);
    const exp = Date.parse(me.accessTokenExpiresAt);

    const renewed = await listening(s, me.accessToken);
    const unrenewed = await listening(s, me.accessToken);
    clock.set(exp - 59_000);
    for (const ws of [renewed, unrenewed]) {
      const warning = (await ws.event('s')).data.sessionEvents;
      expect(warning).toMatchObject({ type: 'ACCESS_TOKEN_EXPIRING', sessionId: me.session.id });
    }
    const fresh = (await s.graphql(REFRESH, { t: me.refreshToken })).data!.refreshToken;
    renewed.send({ type: 'ping', payload: bearerPayload(fresh.accessToken) });
    await renewed.next('pong');

    clock.set(exp + 4_000);
    // Within the tolerance both stay: a query still answers on each.
    for (const ws of [renewed, unrenewed]) {
      ws.subscribe('t1', '{ __typename }');
      await ws.event('t1');
    }
    clock.set(exp + 5_000);
    expect(await unrenewed.closed).toEqual({ code: 4401, reason: 'TOKEN_EXPIRED' });
    renewed.subscribe('t2', '{ me { id } }');
    expect((await renewed.event('t2')).data.me.id).toBe(me.user.id);

    // The renewed token's own expiry ends it in turn.
    clock.set(Date.parse(fresh.accessTokenExpiresAt) + 5_000);
    expect((await renewed.closed).code).toBe(4401);
  });

  it('a subscription started within the last minute gets ACCESS_TOKEN_EXPIRING at once (short ACCESS_TOKEN_TTL)', async () => {
    const s = track(await createTestServer({ store: 'memory', env: { ACCESS_TOKEN_TTL: '30s' } }));
    const me = await signUp(s);
    const ws = await listening(s, me.accessToken);
    expect((await ws.event('s')).data.sessionEvents.type).toBe('ACCESS_TOKEN_EXPIRING');
    ws.close();
  });

  it('an expired token at connection_init is 4401 TOKEN_EXPIRED', async () => {
    const clock = new ManualClock(Date.now());
    const s = track(await createTestServer({ store: new MemoryStore(), clock, env: { CLOCK_TOLERANCE: '0' } }));
    const me = await signUp(s);
    clock.set(Date.parse(me.accessTokenExpiresAt) + 1_000);
    const ws = connect(s);
    await ws.opened;
    ws.send({ type: 'connection_init', payload: bearerPayload(me.accessToken) });
    expect(await ws.closed).toEqual({ code: 4401, reason: 'TOKEN_EXPIRED' });
  });
});

describe('Redis down', () => {
  it('new authenticated connections are closed 1013; existing ones stay until their token needs checking; recovery re-checks them', async () => {
    const redis = await startPrivateRedis({ appendonly: true });
    redises.push(redis);
    const keyPrefix = uniquePrefix('realtime-down');
    const s = track(await createTestServer({ keyPrefix, store: await createRedisStore(keyPrefix, redis.url) }));
    const me = await signUp(s);
    const other = (await s.graphql(LOGIN, { email: me.user.email, password: TEST_PASSWORD })).data!.login;
    await waitFor('the revocation feed', () => s.app.revocations.isHealthy);
    const kept = await listening(s, me.accessToken);
    const renewing = await listening(s, me.accessToken);
    const revokedMeanwhile = await listening(s, other.accessToken);

    await redis.stop('SIGKILL');
    await waitFor('the feed to notice', () => !s.app.revocations.isHealthy);
    const fresh = connect(s);
    await fresh.opened;
    fresh.send({ type: 'connection_init', payload: bearerPayload(me.accessToken) });
    expect(await fresh.closed).toEqual({ code: 1013, reason: 'SERVICE_UNAVAILABLE' });
    // An anonymous connection needs no store.
    const anonymous = connect(s);
    await anonymous.init();
    anonymous.close();
    // A renewal needs the store (the feed cannot vouch for the session): 1013.
    renewing.send({ type: 'ping', payload: bearerPayload(me.accessToken) });
    expect((await renewing.closed).code).toBe(1013);
    // The existing connections are kept meanwhile and keep answering.
    kept.subscribe('q', '{ __typename }');
    await kept.event('q');

    // Back, with a revocation this instance could not hear of: made straight in Redis by another instance.
    await redis.start();
    const elsewhere = await createRedisStore(keyPrefix, redis.url);
    await elsewhere.revokeSession({ userId: me.user.id, sessionId: other.session.id }, Date.now(), {
      cause: 'admin',
      origin: { ipAddress: null, userAgent: null },
    });
    await elsewhere.close();
    // The gateway re-checks its sockets' sessions once its feed is back: the revoked one closes.
    expect((await revokedMeanwhile.closed).code).toBe(4403);
    await waitFor('the feed back', () => s.app.revocations.isHealthy);
    kept.subscribe('q2', '{ me { id } }');
    expect((await kept.event('q2')).data.me.id).toBe(me.user.id);
    kept.close();
  });
});
