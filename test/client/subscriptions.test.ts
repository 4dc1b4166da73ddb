import type { AuthClient, SessionEnded } from '@tessera-gateway/client';
import { createSubscriptionClient } from '@tessera-gateway/client/ws';
import { type Client, createClient } from 'graphql-ws';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ManualClock } from '../../src/clock.js';
import { bearer, createTestServer, LOGIN, TEST_PASSWORD, uniqueEmail } from '../helpers/testServer.js';
import { bearerPayload, connect, SESSION_EVENTS, waitFor } from '../realtime/support.js';
import { ClockTimers, Origin } from './harness.js';

/*
 * `@tessera-gateway/client/ws` in Node against a real gateway, with graphql-ws's real client and
 * `ws` as the WebSocket. The gateway's clock and the auth client's timers are one ManualClock.
 */

const TTL_S = 60;
const open: { close(): unknown }[] = [];

afterEach(async () => {
  for (const thing of open.splice(0).reverse()) await thing.close();
});

async function setup() {
  const clock = new ManualClock(Date.now());
  const server = await createTestServer({ store: 'memory', clock, env: { ACCESS_TOKEN_TTL: `${TTL_S}s`, CLOCK_TOLERANCE: '5s' } });
  open.push(server);
  const timers = new ClockTimers(clock);
  const origin = new Origin(`${server.url}/graphql`, { transport: 'body', now: () => clock.now(), timers });
  open.push(origin);
  const tab = origin.tab();
  const email = uniqueEmail();
  const signedIn = await tab.signup({ email, password: TEST_PASSWORD });
  return { clock, server, timers, origin, tab, email, signedIn };
}

/** A subscription client of `tab` that records what a user would look at. */
function subscriptions(tab: AuthClient) {
  const seen = { connected: 0, pongs: 0, closes: [] as number[] };
  const client: Client = createSubscriptionClient(tab, {
    createClient,
    webSocketImpl: WebSocket,
    retryWait: async () => undefined,
    on: {
      connected: () => (seen.connected += 1),
      pong: (received) => {
        if (received) seen.pongs += 1;
      },
      closed: (event) => seen.closes.push((event as { code: number }).code),
    },
  });
  open.push({ close: () => client.dispose() });
  const events: any[] = [];
  let error: unknown;
  let completed = false;
  client.subscribe({ query: SESSION_EVENTS }, { next: (value) => events.push(value.data?.sessionEvents), error: (caught) => (error = caught), complete: () => (completed = true) });
  return { client, seen, events, state: () => ({ error, completed }) };
}

/** One query over the subscription client's connection. */
function once(client: Client, query: string): Promise<any> {
  return new Promise((resolve, reject) => {
    let result: unknown;
    client.subscribe({ query }, { next: (value) => (result = value), error: reject, complete: () => resolve(result) });
  });
}

describe('createSubscriptionClient', () => {
  it('connects with the bearer token, receives sessionEvents, and closes the socket on logout', async () => {
    const { server, tab, email, signedIn } = await setup();
    const { client, seen, events, state } = subscriptions(tab);
    // Frames are handled in order: once this answers, the subscription runs, signed in as the user.
    expect((await once(client, '{ me { id email } }')).data.me).toEqual({ id: signedIn.user.id, email });

    const elsewhere = (await server.graphql(LOGIN, { email, password: TEST_PASSWORD }, { 'user-agent': 'Phone/2' })).data!.login;
    await waitFor('SIGNED_IN_ELSEWHERE', () => events.some((event) => event?.type === 'SIGNED_IN_ELSEWHERE'));
    expect(events.find((event) => event.type === 'SIGNED_IN_ELSEWHERE')).toMatchObject({ sessionId: elsewhere.session.id, userAgent: 'Phone/2' });

    const ended: SessionEnded[] = [];
    tab.onSessionEnded((event) => ended.push(event));
    expect(await tab.logout()).toBe(true);
    // Closed by the gateway (the revoked session: 4403) or by the client (1000), whichever is first; never reopened.
    await waitFor('the socket closed', () => seen.closes.length === 1);
    expect([1000, 4403]).toContain(seen.closes[0]);
    expect(ended).toEqual([{ reason: 'LOGGED_OUT', fromOtherTab: false }]);
    expect(tab.session).toBeNull();
    await waitFor('the subscription to end', () => state().error !== undefined || state().completed);
    expect(seen.connected).toBe(1);
  });

  it('after a refresh it renews in band: the connection outlives the first token (an unrenewed one is closed 4401)', async () => {
    const { clock, server, timers, origin, tab, signedIn } = await setup();
    const { client, seen } = subscriptions(tab);
    await once(client, '{ __typename }');
    const first = await tab.getAccessToken();
    const control = connect(server);
    await control.init(bearerPayload(first!));

    // The auth client's own proactive refresh (at 3/4 of the lifetime), then the renewal ping.
    timers.advance(TTL_S * 1000 * 0.75);
    await waitFor('the refresh', () => origin.recorder.count('TesseraRefresh') === 1);
    await waitFor('the renewal pong', () => seen.pongs === 1);
    expect(await tab.getAccessToken()).not.toBe(first);

    clock.advance(TTL_S * 1000 * 0.25 + 6_000);
    expect(await control.closed).toEqual({ code: 4401, reason: 'TOKEN_EXPIRED' });
    expect((await once(client, '{ me { id } }')).data.me.id).toBe(signedIn.user.id);
    expect(seen.closes).toEqual([]);
    expect(seen.connected).toBe(1);
  });

  it('revoking the session elsewhere closes it (4403, after SESSION_REVOKED) and ends the session: onSessionEnded fires', async () => {
    const { server, tab, signedIn } = await setup();
    const ended: SessionEnded[] = [];
    tab.onSessionEnded((event) => ended.push(event));
    const { client, seen, events, state } = subscriptions(tab);
    await once(client, '{ __typename }');

    const revoked = await server.graphql('mutation { revokeSession }', {}, bearer((await tab.getAccessToken())!));
    expect(revoked.data).toEqual({ revokeSession: true });
    await waitFor('the session ended', () => ended.length === 1);
    expect(ended).toEqual([{ reason: 'SESSION_REVOKED', fromOtherTab: false }]);
    expect(tab.session).toBeNull();
    expect(events.at(-1)).toMatchObject({ type: 'SESSION_REVOKED', sessionId: signedIn.session.id });
    expect(seen.closes[0]).toBe(4403);
    // Not reconnected (anonymously or otherwise).
    await waitFor('the subscription to end', () => state().error !== undefined || state().completed);
    expect(seen.connected).toBe(1);
  });
});

describe('a missed renewal', () => {
  it('a close 4401 (the page slept past exp) is followed by a refresh and one reconnection; the subscription goes on', async () => {
    const { clock, server, origin, tab, email, signedIn } = await setup();
    const { client, seen, events, state } = subscriptions(tab);
    await once(client, '{ __typename }');
    // Past exp + CLOCK_TOLERANCE without the auth client's timers running (a sleeping tab).
    clock.advance(TTL_S * 1000 + 6_000);
    await waitFor('the reconnection', () => seen.connected === 2);
    expect(origin.recorder.count('TesseraRefresh')).toBe(1);
    expect(state().error).toBeUndefined();
    expect((await once(client, '{ me { id } }')).data.me.id).toBe(signedIn.user.id);
    // The same subscription, resubscribed by graphql-ws, still hears the user's events.
    await server.graphql(LOGIN, { email, password: TEST_PASSWORD });
    await waitFor('SIGNED_IN_ELSEWHERE', () => events.some((event) => event?.type === 'SIGNED_IN_ELSEWHERE'));
  });
});
