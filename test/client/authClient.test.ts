import { AuthClientError, createAuthClient, MemoryStorage, type SessionEnded } from '@tessera-gateway/client';
import { BroadcastChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { createTestServer, LOGIN, TEST_PASSWORD, uniqueEmail } from '../helpers/testServer.js';
import { ClockTimers, ME, Origin, query, Recorder } from './harness.js';

/*
 * The client package in Node against a real gateway: the gateway's clock and the client's timers
 * are one ManualClock, so the tests move time instead of waiting for it. Tabs are several clients
 * sharing a storage, a lock manager and a (real, Node) BroadcastChannel.
 */

const TTL_S = 60;
const open: { close(): unknown }[] = [];

afterEach(async () => {
  for (const thing of open.splice(0).reverse()) await thing.close();
});

async function setup(options: { store?: 'memory' | 'redis'; env?: Record<string, string> } = {}) {
  const clock = new ManualClock(Date.now());
  const server = await createTestServer({ store: options.store ?? 'memory', clock, env: { ACCESS_TOKEN_TTL: `${TTL_S}s`, ...options.env } });
  open.push(server);
  const timers = new ClockTimers(clock);
  const origin = new Origin(`${server.url}/graphql`, { transport: 'body', now: () => clock.now(), timers });
  open.push(origin);
  const email = uniqueEmail();
  return { clock, server, timers, origin, email };
}

/** Lets the promises started by timers (refreshes over real HTTP) settle. */
async function settle(until: () => boolean): Promise<void> {
  await expect.poll(until, { timeout: 5_000, interval: 10 }).toBe(true);
}

describe('signing in and calling the gateway', () => {
  it('signup then me through client.fetch, which adds the bearer token; the session comes from the token', async () => {
    const { origin, email } = await setup();
    const tab = origin.tab();
    expect(tab.session).toBeNull();
    expect(await tab.getAccessToken()).toBeNull();
    const signedIn = await tab.signup({ email, password: TEST_PASSWORD });
    expect(signedIn.user.email).toBe(email);
    expect(tab.session).toMatchObject({ userId: signedIn.user.id, sessionId: signedIn.session.id, roles: expect.any(Array) });
    // One object until it changes (a React external store's snapshot must be).
    expect(tab.session).toBe(tab.session);
    const me = await query(tab, ME);
    expect(me.errors).toBeUndefined();
    expect(me.data.me.email).toBe(email);
  });

  it('login with a wrong password rejects with the gateway code and reason, and stays signed out', async () => {
    const { origin, email } = await setup();
    const tab = origin.tab();
    await tab.signup({ email, password: TEST_PASSWORD });
    await tab.logout();
    const error = await tab.login({ email, password: 'wrong password!' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AuthClientError);
    expect(error).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'INVALID_CREDENTIALS' });
    expect(tab.session).toBeNull();
  });

  it('adds no token to requests for another origin', async () => {
    const { origin, email, server } = await setup();
    const tab = origin.tab();
    await tab.signup({ email, password: TEST_PASSWORD });
    const seen: (string | null)[] = [];
    const other = await createTestServer({ store: 'memory' });
    open.push(other);
    const spy = createAuthClient({
      url: `${server.url}/graphql`,
      transport: 'body',
      storage: origin.storage,
      locks: null,
      channel: null,
      fetch: async (input, init) => {
        seen.push(new Headers(init?.headers).get('authorization'));
        return fetch(input, init);
      },
    });
    open.push(spy);
    await spy.fetch(`${other.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: ME }) });
    await spy.fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: ME }) });
    expect(seen).toEqual([null, `Bearer ${await tab.getAccessToken()}`]);
  });
});

describe('refresh', () => {
  it('renews the access token shortly before exp by itself, again and again, one refresh each time', async () => {
    const { origin, email, timers } = await setup();
    const tab = origin.tab();
    await tab.signup({ email, password: TEST_PASSWORD });
    const tokens = [await tab.getAccessToken()];
    for (let round = 1; round <= 3; round += 1) {
      // Due at exp minus a quarter of the lifetime (under the 30 s cap): not before.
      timers.advance(TTL_S * 1000 * 0.75 - 1_000);
      expect(origin.recorder.count('TesseraRefresh')).toBe(round - 1);
      timers.advance(1_000);
      await settle(() => origin.recorder.count('TesseraRefresh') === round);
      await expect.poll(() => tab.getAccessToken()).not.toBe(tokens.at(-1));
      tokens.push(await tab.getAccessToken());
      expect((await query(tab, ME)).data.me.email).toBe(email);
    }
    expect(new Set(tokens).size).toBe(4);
    expect(origin.recorder.count('TesseraRefresh')).toBe(3);
  });

  it('a proactive refresh that fails on the network is tried again after retryDelayMs, still signed in meanwhile', async () => {
    const { server, email, clock, timers } = await setup();
    const recorder = new Recorder();
    let down = false;
    const tab = createAuthClient({
      url: `${server.url}/graphql`,
      transport: 'body',
      storage: new MemoryStorage(),
      locks: null,
      channel: null,
      now: () => clock.now(),
      timers,
      retryDelayMs: 2_000,
      // The gateway unreachable while `down` (a closed port answers nothing).
      fetch: (input, init) => (down ? fetch('http://127.0.0.1:9/graphql', init) : recorder.fetch(input, init)),
    });
    open.push(tab);
    await tab.signup({ email, password: TEST_PASSWORD });
    const before = await tab.getAccessToken();
    down = true;
    timers.advance(TTL_S * 1000 * 0.75);
    // The failed attempt schedules the next one.
    await settle(() => timers.size === 1 && timers.next === clock.now() + 2_000);
    expect(tab.session).not.toBeNull();
    down = false;
    timers.advance(2_000);
    await settle(() => recorder.count('TesseraRefresh') === 1);
    await expect.poll(() => tab.getAccessToken()).not.toBe(before);
    expect((await query(tab, ME)).data.me.email).toBe(email);
  });

  it('single flight in a page: many concurrent refresh() calls, one refreshToken at the gateway (no locks, no channel)', async () => {
    const { server, email } = await setup();
    const recorder = new Recorder();
    const tab = createAuthClient({ url: `${server.url}/graphql`, transport: 'body', fetch: recorder.fetch, locks: null, channel: null, storage: new MemoryStorage() });
    open.push(tab);
    await tab.signup({ email, password: TEST_PASSWORD });
    const before = await tab.getAccessToken();
    const sessions = await Promise.all(Array.from({ length: 5 }, () => tab.refresh()));
    expect(recorder.count('TesseraRefresh')).toBe(1);
    expect(new Set(sessions.map((session) => session?.expiresAt)).size).toBe(1);
    expect(await tab.getAccessToken()).not.toBe(before);
  });

  it('client.fetch retries once after a refresh when the gateway answers TOKEN_EXPIRED', async () => {
    const { origin, email, clock } = await setup();
    // This tab's clock stays behind the gateway's, so it believes its token is fresh.
    const frozen = clock.now();
    const tab = origin.tab({ now: () => frozen, timers: new ClockTimers(new ManualClock(frozen)) });
    await tab.signup({ email, password: TEST_PASSWORD });
    clock.advance((TTL_S + 10) * 1000);
    const me = await query(tab, ME);
    expect(me.errors).toBeUndefined();
    expect(me.data.me.email).toBe(email);
    expect(origin.recorder.operations.filter((name) => name !== 'TesseraSignup')).toEqual(['me', 'TesseraRefresh', 'me']);
  });

  it('a refused refresh (REFRESH_TOKEN_INVALID) ends the session and tells onSessionEnded', async () => {
    const { origin, email, server } = await setup();
    const tab = origin.tab();
    const ended: SessionEnded[] = [];
    tab.onSessionEnded((event) => ended.push(event));
    const signedIn = await tab.signup({ email, password: TEST_PASSWORD });
    // Ended elsewhere (another device revoking it):
    const other = await server.graphql(LOGIN, { email, password: TEST_PASSWORD });
    const revoked = await server.graphql('mutation($id: ID) { revokeSession(sessionId: $id) }', { id: signedIn.session.id }, { authorization: `Bearer ${other.data!.login.accessToken}` });
    expect(revoked.data).toEqual({ revokeSession: true });
    expect(await tab.refresh()).toBeNull();
    expect(tab.session).toBeNull();
    expect(ended).toEqual([{ reason: 'REFRESH_TOKEN_INVALID', fromOtherTab: false }]);
    expect(origin.storage.getItem(`tessera:${server.url}/graphql`)).toBeNull();
  });

  it('a request answered SESSION_REVOKED ends the session in every tab', async () => {
    const { origin, email, server } = await setup();
    const [one, two] = [origin.tab(), origin.tab()];
    const ended: SessionEnded[] = [];
    two.onSessionEnded((event) => ended.push(event));
    const signedIn = await one.signup({ email, password: TEST_PASSWORD });
    await settle(() => two.session?.sessionId === signedIn.session.id);
    const other = await server.graphql(LOGIN, { email, password: TEST_PASSWORD });
    await server.graphql('mutation($id: ID) { revokeSession(sessionId: $id) }', { id: signedIn.session.id }, { authorization: `Bearer ${other.data!.login.accessToken}` });
    await expect.poll(async () => (await query(one, ME)).errors?.[0]?.extensions?.reason, { timeout: 5_000 }).toBe('SESSION_REVOKED');
    expect(one.session).toBeNull();
    await settle(() => ended.length === 1);
    expect(ended).toEqual([{ reason: 'SESSION_REVOKED', fromOtherTab: true }]);
    expect(two.session).toBeNull();
  });
});

describe('tabs of one origin', () => {
  it('several tabs refreshing at once: one refreshToken reaches the gateway, every tab gets the new token', async () => {
    const { origin, email } = await setup({ store: 'redis' });
    const tabs = [origin.tab(), origin.tab(), origin.tab()];
    await tabs[0]!.signup({ email, password: TEST_PASSWORD });
    await settle(() => tabs.every((tab) => tab.session !== null));
    const first = await tabs[0]!.getAccessToken();
    const sessions = await Promise.all(tabs.map((tab) => tab.refresh()));
    expect(origin.recorder.count('TesseraRefresh')).toBe(1);
    const tokens = await Promise.all(tabs.map((tab) => tab.getAccessToken()));
    expect(new Set(tokens).size).toBe(1);
    expect(tokens[0]).not.toBe(first);
    expect(sessions.every((session) => session?.sessionId === sessions[0]?.sessionId)).toBe(true);
    for (const tab of tabs) expect((await query(tab, ME)).data.me.email).toBe(email);
  });

  it('storage that lags behind the lock (each tab its own, as another renderer may see it): a tab that waited takes the token from the message, one refresh', async () => {
    const { origin, email } = await setup({ store: 'redis' });
    const tabs = [origin.tab({ storage: new MemoryStorage() }), origin.tab({ storage: new MemoryStorage() }), origin.tab({ storage: new MemoryStorage() })];
    await tabs[0]!.signup({ email, password: TEST_PASSWORD });
    await settle(() => tabs.every((tab) => tab.session !== null));
    const first = await tabs[0]!.getAccessToken();
    await Promise.all(tabs.map((tab) => tab.refresh()));
    expect(origin.locks.contended).toBeGreaterThanOrEqual(2);
    expect(origin.recorder.count('TesseraRefresh')).toBe(1);
    const tokens = await Promise.all(tabs.map((tab) => tab.getAccessToken()));
    expect(new Set(tokens).size).toBe(1);
    expect(tokens[0]).not.toBe(first);
    for (const tab of tabs) expect((await query(tab, ME)).data.me.email).toBe(email);
  });

  it('proactive refresh in three tabs through several expiries: one refresh per expiry, no tab ever signed out', async () => {
    const { origin, email, timers } = await setup({ store: 'redis' });
    const tabs = [origin.tab(), origin.tab(), origin.tab()];
    const changes: (string | null)[] = [];
    for (const tab of tabs) tab.onChange((session) => changes.push(session?.sessionId ?? null));
    await tabs[0]!.signup({ email, password: TEST_PASSWORD });
    await settle(() => tabs.every((tab) => tab.session !== null));
    for (let expiry = 1; expiry <= 4; expiry += 1) {
      const before = await tabs[0]!.getAccessToken();
      // Every tab's timer falls due at the same moment.
      timers.advance(TTL_S * 1000 * 0.75);
      await settle(() => origin.recorder.count('TesseraRefresh') === expiry);
      await expect.poll(async () => new Set(await Promise.all(tabs.map((tab) => tab.getAccessToken()))).size).toBe(1);
      expect(await tabs[1]!.getAccessToken()).not.toBe(before);
    }
    expect(origin.recorder.count('TesseraRefresh')).toBe(4);
    expect(changes).not.toContain(null);
  });

  it('a new tab picks up the session of the origin from storage', async () => {
    const { origin, email } = await setup();
    const first = origin.tab();
    await first.signup({ email, password: TEST_PASSWORD });
    const later = origin.tab();
    expect(later.session?.sessionId).toBe(first.session?.sessionId);
    expect(await later.restore()).toMatchObject({ sessionId: first.session?.sessionId });
    expect((await query(later, ME)).data.me.email).toBe(email);
    expect(origin.recorder.count('TesseraRefresh')).toBe(0);
  });

  it('log out in one tab: the other tab is signed out and told so', async () => {
    const { origin, email, server } = await setup();
    const [one, two] = [origin.tab(), origin.tab()];
    const ended: SessionEnded[] = [];
    two.onSessionEnded((event) => ended.push(event));
    const signedIn = await one.signup({ email, password: TEST_PASSWORD });
    await settle(() => two.session !== null);
    const token = await two.getAccessToken();
    expect(await one.logout()).toBe(true);
    await settle(() => ended.length === 1);
    expect(ended).toEqual([{ reason: 'LOGGED_OUT', fromOtherTab: true }]);
    expect(two.session).toBeNull();
    expect(await two.getAccessToken()).toBeNull();
    // Ended at the gateway too: the old token is refused there.
    const me = await server.graphql(ME, {}, { authorization: `Bearer ${token}` });
    expect(me.errors[0]?.extensions.reason).toBe('SESSION_REVOKED');
    expect(signedIn.session.id).toBeTruthy();
  });

  it('logoutEverywhere ends every session of the user, and this one in every tab', async () => {
    const { origin, email, server } = await setup();
    const [one, two] = [origin.tab(), origin.tab()];
    await one.signup({ email, password: TEST_PASSWORD });
    const elsewhere = await server.graphql(LOGIN, { email, password: TEST_PASSWORD });
    await settle(() => two.session !== null);
    expect(await one.logoutEverywhere()).toBe(2);
    await settle(() => two.session === null);
    const refreshed = await server.graphql('mutation($t: String) { refreshToken(refreshToken: $t) { accessToken } }', { t: elsewhere.data!.login.refreshToken });
    expect(refreshed.errors[0]?.extensions.reason).toBe('REFRESH_TOKEN_INVALID');
    await expect(one.logoutEverywhere()).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });
});

describe('malformed or missing tokens are "signed out", never a crash', () => {
  const garbage = ['not json', '{"v":1}', JSON.stringify({ v: 1, accessToken: 'a.b.c', refreshToken: 'x', expiresAt: 1, lifetimeMs: 1 }), JSON.stringify({ v: 1, accessToken: `x.${Buffer.from('{"sub":1}').toString('base64url')}.y`, refreshToken: 'x', expiresAt: 1, lifetimeMs: 1 }), 'null', '[]'];

  it.each(garbage)('stored %s: signed out, restore() resolves null, fetch goes without a token', async (stored) => {
    const { origin, server } = await setup();
    origin.storage.setItem(`tessera:${server.url}/graphql`, stored);
    const tab = origin.tab();
    expect(tab.session).toBeNull();
    expect(await tab.restore()).toBeNull();
    expect(await tab.getAccessToken()).toBeNull();
    const me = await query(tab, ME);
    expect(me.data).toEqual({ me: null });
    expect(me.errors?.[0]?.extensions?.reason).toBe('TOKEN_MISSING');
  });

  it('a gateway answer whose access token cannot be read: login rejects, signed out', async () => {
    const { server, email } = await setup();
    const tab = createAuthClient({
      url: `${server.url}/graphql`,
      transport: 'body',
      storage: new MemoryStorage(),
      locks: null,
      channel: null,
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        const text = (await response.text()).replace(/"accessToken":"[^"]+"/, '"accessToken":"eyJhbGciOi.bm90IGpzb24.c2ln"');
        return new Response(text, { status: response.status, headers: response.headers });
      },
    });
    open.push(tab);
    await expect(tab.signup({ email, password: TEST_PASSWORD })).rejects.toMatchObject({ code: 'BAD_RESPONSE', reason: 'TOKEN_INVALID' });
    expect(tab.session).toBeNull();
  });

  it('a broadcast message of any shape, or about another session, is ignored', async () => {
    const { origin, email } = await setup();
    const tab = origin.tab();
    await tab.signup({ email, password: TEST_PASSWORD });
    const channel = new BroadcastChannel(origin.channelName);
    // Nonsense, and the end of another session (not this tab's).
    for (const message of [null, 1, 'x', {}, { type: 'tokens' }, { type: 'tokens', tokens: { v: 2 } }, { type: 'ended' }, { type: 'ended', reason: 'LOGGED_OUT', sessionId: 'another' }]) channel.postMessage(message);
    channel.postMessage({ type: 'tokens', tokens: { v: 1, accessToken: 'garbage', refreshToken: 'r', expiresAt: 1, lifetimeMs: 1 } });
    const changes: unknown[] = [];
    tab.onChange((session) => changes.push(session));
    // A marker after them: once it arrives, so have they; the marker alone changed anything.
    const seen = new Promise<void>((resolve) => tab.onSessionEnded(() => resolve()));
    channel.postMessage({ type: 'ended', reason: 'LOGGED_OUT' });
    await seen;
    channel.close();
    expect(changes).toEqual([null]);
    expect(tab.session).toBeNull();
  });
});
