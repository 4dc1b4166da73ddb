import { ApolloClient, CombinedGraphQLErrors, gql, InMemoryCache } from '@apollo/client';
import { createAuthClient, type FetchLike, MemoryStorage, type SessionEnded } from '@tessera-gateway/client';
import { createApolloLink } from '@tessera-gateway/client/apollo';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { createTestServer, TEST_PASSWORD, uniqueEmail } from '../helpers/testServer.js';
import { ClockTimers, ME, Origin, query } from './harness.js';

const open: { close(): unknown }[] = [];
afterEach(async () => {
  for (const thing of open.splice(0).reverse()) await thing.close();
});

describe('createApolloLink (Apollo Client 4)', () => {
  it('queries with the bearer token, refreshes and retries once on TOKEN_EXPIRED, and ends the session on SESSION_REVOKED', async () => {
    const clock = new ManualClock(Date.now());
    const server = await createTestServer({ store: 'memory', clock, env: { ACCESS_TOKEN_TTL: '60s' } });
    open.push(server);
    const frozen = clock.now();
    // The tab's clock stays behind the gateway's: it sends its token, the gateway says TOKEN_EXPIRED.
    const origin = new Origin(`${server.url}/graphql`, { transport: 'body', now: () => frozen, timers: new ClockTimers(new ManualClock(frozen)) });
    open.push(origin);
    const auth = origin.tab();
    const ended: SessionEnded[] = [];
    auth.onSessionEnded((event) => ended.push(event));
    const email = uniqueEmail();
    await auth.signup({ email, password: TEST_PASSWORD });
    const apollo = new ApolloClient({ link: createApolloLink(auth), cache: new InMemoryCache() });
    open.push({ close: () => apollo.stop() });

    const first = await apollo.query({ query: gql(ME), fetchPolicy: 'network-only' });
    expect(first.data).toMatchObject({ me: { email } });

    clock.advance(70_000);
    const second = await apollo.query({ query: gql(ME), fetchPolicy: 'network-only' });
    expect(second.data).toMatchObject({ me: { email } });
    expect(origin.recorder.operations.slice(1)).toEqual(['me', 'me', 'TesseraRefresh', 'me']);

    // Revoked from elsewhere: the answer is an error, and the session is over.
    await server.graphql('mutation { revokeAllSessions }', {}, { authorization: `Bearer ${await auth.getAccessToken()}` });
    const third = await apollo.query({ query: gql(ME), fetchPolicy: 'network-only' }).catch((error: unknown) => error);
    expect(CombinedGraphQLErrors.is(third)).toBe(true);
    expect((third as CombinedGraphQLErrors).errors[0]?.extensions?.reason).toBe('SESSION_REVOKED');
    expect(auth.session).toBeNull();
    expect(ended).toEqual([{ reason: 'SESSION_REVOKED', fromOtherTab: false }]);
  });
});

/** A browser's cookie jar for one site, in front of fetch: it sends the cookies only with `credentials: 'include'`. */
function cookieJar(): { fetch: FetchLike; cookies: Map<string, string>; requests: { credentials?: RequestInit['credentials']; body: string }[] } {
  const cookies = new Map<string, string>();
  const requests: { credentials?: RequestInit['credentials']; body: string }[] = [];
  const jarFetch: FetchLike = async (input, init) => {
    requests.push({ credentials: init?.credentials, body: String(init?.body ?? '') });
    const headers = new Headers(init?.headers);
    if (init?.credentials === 'include' && cookies.size > 0) headers.set('cookie', [...cookies].map(([name, value]) => `${name}=${value}`).join('; '));
    const response = await fetch(input, { ...init, headers });
    if (init?.credentials === 'include') {
      for (const line of response.headers.getSetCookie()) {
        const [pair] = line.split(';');
        const at = pair!.indexOf('=');
        const name = pair!.slice(0, at);
        if (/max-age=0/i.test(line)) cookies.delete(name);
        else cookies.set(name, pair!.slice(at + 1));
      }
    }
    return response;
  };
  return { fetch: jarFetch, cookies, requests };
}

describe("transport: 'cookie'", () => {
  it('never reads, stores or sends the refresh token itself: the cookie (credentials: include) carries it', async () => {
    const server = await createTestServer({ store: 'memory', env: { REFRESH_TOKEN_TRANSPORT: 'cookie' } });
    open.push(server);
    const jar = cookieJar();
    const storage = new MemoryStorage();
    const key = `tessera:${server.url}/graphql`;
    const client = createAuthClient({ url: `${server.url}/graphql`, transport: 'cookie', fetch: jar.fetch, storage, locks: null, channel: null });
    open.push(client);
    const email = uniqueEmail();
    await client.signup({ email, password: TEST_PASSWORD });
    const cookie = jar.cookies.get('tessera_refresh');
    expect(cookie).toBeTruthy();
    const before = await client.getAccessToken();

    expect(await client.refresh()).not.toBeNull();
    expect(await client.getAccessToken()).not.toBe(before);
    expect(jar.cookies.get('tessera_refresh')).not.toBe(cookie);
    // The refresh asked for the cookie's token (no argument), with credentials.
    const refresh = jar.requests.find((request) => request.body.includes('TesseraRefresh'))!;
    expect(refresh.credentials).toBe('include');
    expect(JSON.parse(refresh.body).variables).toEqual({ refreshToken: null });
    // What the page keeps shares the access token only.
    expect(storage.getItem(key)).not.toContain(cookie!);
    expect(storage.getItem(key)).not.toContain(jar.cookies.get('tessera_refresh')!);
    expect(Object.keys(JSON.parse(storage.getItem(key)!))).not.toContain('refreshToken');
    expect((await query(client, ME)).data.me.email).toBe(email);

    // A new page with only the cookie (nothing stored) restores the session with it.
    storage.removeItem(key);
    const restored = createAuthClient({ url: `${server.url}/graphql`, transport: 'cookie', fetch: jar.fetch, storage, locks: null, channel: null });
    open.push(restored);
    expect(restored.session).toBeNull();
    expect(await restored.restore()).toMatchObject({ sessionId: client.session?.sessionId });

    // Logout with the cookie: the gateway clears it, and the session is over.
    expect(await restored.logout()).toBe(true);
    expect(jar.cookies.has('tessera_refresh')).toBe(false);
    const again = createAuthClient({ url: `${server.url}/graphql`, transport: 'cookie', fetch: jar.fetch, storage, locks: null, channel: null });
    open.push(again);
    expect(await again.restore()).toBeNull();
  });

  it("body transport against a cookie-only gateway says what is wrong instead of signing in half", async () => {
    const server = await createTestServer({ store: 'memory', env: { REFRESH_TOKEN_TRANSPORT: 'cookie' } });
    open.push(server);
    const client = createAuthClient({ url: `${server.url}/graphql`, transport: 'body', storage: new MemoryStorage(), locks: null, channel: null });
    open.push(client);
    await expect(client.signup({ email: uniqueEmail(), password: TEST_PASSWORD })).rejects.toMatchObject({ code: 'BAD_RESPONSE', message: expect.stringContaining("transport: 'cookie'") });
    expect(client.session).toBeNull();
  });
});
