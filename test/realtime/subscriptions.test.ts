import { afterAll, describe, expect, it } from 'vitest';
import { PrometheusMetrics } from '../../src/observability/metrics.js';
import { bearer, createTestServer, LOGIN, REFRESH, signUp, TEST_PASSWORD, type TestServer } from '../helpers/testServer.js';
import { bearerPayload, connect, SESSION_EVENTS, waitFor } from './support.js';

const servers: TestServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close().catch(() => undefined)));
});

async function server(store: 'redis' | 'memory', env: Record<string, string> = {}, metrics?: PrometheusMetrics) {
  const made = await createTestServer({ store, env, ...(metrics ? { deps: { metrics } } : {}) });
  servers.push(made);
  return made;
}

describe.each(['memory', 'redis'] as const)('GraphQL over WebSocket (%s store)', (store) => {
  it('an anonymous connection runs public queries; sessionEvents needs a signed-in caller', async () => {
    const s = await server(store);
    const ws = connect(s);
    await ws.init();
    ws.subscribe('q', '{ __typename }');
    expect(await ws.event('q')).toEqual({ data: { __typename: 'Query' } });
    await ws.next('complete');
    ws.subscribe('s', SESSION_EVENTS);
    const refused = await ws.event('s');
    expect(refused.errors[0].extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_MISSING' });
    ws.close();
  });

  it('signed in: SIGNED_IN_ELSEWHERE for a new session (its id), then SESSION_REVOKED and close 4403 when this one is revoked', async () => {
    const s = await server(store);
    const me = await signUp(s);
    const ws = connect(s);
    await ws.init(bearerPayload(me.accessToken));
    ws.subscribe('s', SESSION_EVENTS);
    // The subscription is in place once the gateway has it running: a query after it on the same socket is answered after.
    ws.subscribe('q', '{ me { id } }');
    expect((await ws.event('q')).data.me.id).toBe(me.user.id);

    const other = await s.graphql(LOGIN, { email: me.user.email, password: TEST_PASSWORD }, { 'user-agent': 'Laptop/1.0' });
    const elsewhere = await ws.event('s');
    expect(elsewhere.data.sessionEvents).toMatchObject({
      type: 'SIGNED_IN_ELSEWHERE',
      sessionId: other.data!.login.session.id,
      userAgent: 'Laptop/1.0',
      ipAddress: '127.0.0.1',
    });
    expect(Date.parse(elsewhere.data.sessionEvents.time)).not.toBeNaN();

    const revoked = await s.graphql('mutation { revokeSession }', {}, bearer(me.accessToken));
    expect(revoked.data).toEqual({ revokeSession: true });
    const last = await ws.event('s');
    expect(last.data.sessionEvents).toMatchObject({ type: 'SESSION_REVOKED', sessionId: me.session.id });
    expect(await ws.closed).toEqual({ code: 4403, reason: 'SESSION_REVOKED' });
  });

  it('over HTTP a subscription is refused with a pointer to the WebSocket', async () => {
    const s = await server(store);
    const me = await signUp(s);
    const answer = await s.graphql(SESSION_EVENTS, {}, bearer(me.accessToken));
    expect(answer.errors[0]).toMatchObject({
      message: 'Subscriptions are served over WebSocket (graphql-transport-ws) at /graphql.',
      extensions: { code: 'BAD_USER_INPUT' },
    });
  });

  it('closes with 4401 at connection_init for a malformed, forged or revoked token, and for a non-string one', async () => {
    const s = await server(store);
    const me = await signUp(s);
    const forged = `${me.accessToken.slice(0, -4)}AAAA`;
    for (const payload of [{ authorization: 'Bearer nonsense' }, bearerPayload(forged), { authorization: 42 }, { authorization: 'Basic abc' }]) {
      const ws = connect(s);
      await ws.opened;
      ws.send({ type: 'connection_init', payload });
      expect((await ws.closed).code, JSON.stringify(payload)).toBe(4401);
      expect(ws.frames.filter((f) => f.type === 'connection_ack')).toEqual([]);
    }
    await s.graphql('mutation { revokeSession }', {}, bearer(me.accessToken));
    const ws = connect(s);
    await ws.opened;
    ws.send({ type: 'connection_init', payload: bearerPayload(me.accessToken) });
    expect(await ws.closed).toEqual({ code: 4401, reason: 'SESSION_REVOKED' });
  });

  it('renewal: a ping with a new token of the same session is answered with a pong and keeps the connection', async () => {
    const s = await server(store);
    const me = await signUp(s);
    const ws = connect(s);
    await ws.init(bearerPayload(me.accessToken));
    const refreshed = await s.graphql(REFRESH, { t: me.refreshToken });
    expect(refreshed.errors).toEqual([]);
    ws.send({ type: 'ping', payload: bearerPayload(refreshed.data!.refreshToken.accessToken) });
    expect(await ws.next('pong')).toMatchObject({ type: 'pong' });
    ws.subscribe('q', '{ me { id } }');
    expect((await ws.event('q')).data.me.id).toBe(me.user.id);
    ws.close();
  });

  it('renewal for another user or another session closes with 4403; a bad renewal token with 4401', async () => {
    const s = await server(store);
    const me = await signUp(s);
    const stranger = await signUp(s);
    const mySecondSession = (await s.graphql(LOGIN, { email: me.user.email, password: TEST_PASSWORD })).data!.login;
    for (const [token, code] of [
      [stranger.accessToken, 4403],
      [mySecondSession.accessToken, 4403],
      ['garbage', 4401],
    ] as const) {
      const ws = connect(s);
      await ws.init(bearerPayload(me.accessToken));
      ws.send({ type: 'ping', payload: bearerPayload(token) });
      expect((await ws.closed).code).toBe(code);
    }
    // An anonymous connection cannot become someone by renewal either.
    const anonymous = connect(s);
    await anonymous.init();
    anonymous.send({ type: 'ping', payload: bearerPayload(me.accessToken) });
    expect((await anonymous.closed).code).toBe(4403);
  });

  it('bad input: messages before connection_init, malformed frames, a second init, never-sent init', async () => {
    const s = await server(store, { WS_CONNECTION_INIT_TIMEOUT: '1s' });
    const early = connect(s);
    await early.opened;
    early.subscribe('s', SESSION_EVENTS);
    expect((await early.closed).code).toBe(4401);

    for (const frame of ['not json', '{"type":"subscribe"}', '[1,2]', '{"type":"whatever"}', JSON.stringify({ type: 'subscribe', id: 1, payload: {} })]) {
      const ws = connect(s);
      await ws.init();
      ws.send(frame);
      expect((await ws.closed).code, frame).toBe(4400);
    }

    const twice = connect(s);
    await twice.init();
    twice.send({ type: 'connection_init' });
    expect((await twice.closed).code).toBe(4429);

    const silent = connect(s);
    await silent.opened;
    expect((await silent.closed).code).toBe(4408);

    // The gateway still serves after all that.
    const ok = connect(s);
    await ok.init();
    ok.subscribe('q', '{ __typename }');
    expect((await ok.event('q')).data).toEqual({ __typename: 'Query' });
    ok.close();
  });

  it('a subscribe flood: the per-connection cap, the operation limits, mutations refused, a frame over MAX_BODY_BYTES', async () => {
    const s = await server(store, { WS_MAX_SUBSCRIPTIONS: '2', MAX_ALIASES: '2', MAX_BODY_BYTES: '4096' });
    const me = await signUp(s);
    const ws = connect(s);
    await ws.init(bearerPayload(me.accessToken));
    ws.subscribe('a', SESSION_EVENTS);
    ws.subscribe('b', SESSION_EVENTS);
    ws.subscribe('c', SESSION_EVENTS);
    const capped = await ws.next('error');
    expect(capped.id).toBe('c');
    expect(capped.payload[0].extensions.code).toBe('BAD_USER_INPUT');
    ws.send({ type: 'complete', id: 'b' });
    // Frames are handled in order: after the complete there is room again.
    ws.subscribe('q', '{ __typename }');
    expect(await ws.event('q')).toEqual({ data: { __typename: 'Query' } });

    const deep = connect(s);
    await deep.init(bearerPayload(me.accessToken));
    deep.subscribe('d', '{ me { id } sessions { id } }');
    expect((await deep.event('d')).data.me.id).toBe(me.user.id);
    deep.subscribe('e', '{ a: __typename b: __typename c: __typename }');
    const overLimit = await deep.next('error');
    expect(overLimit).toMatchObject({ id: 'e' });
    expect(overLimit.payload[0]).toMatchObject({ message: 'Alias count 3 exceeds the limit of 2.', extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
    deep.subscribe('f', '{ me { id } } { me { id } }');
    const invalid = await deep.next('error');
    expect(invalid.payload[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    deep.subscribe('g', '{ me {');
    const unparsable = await deep.next('error');
    expect(unparsable).toMatchObject({ id: 'g' });
    expect(unparsable.payload[0].extensions.code).toBe('GRAPHQL_PARSE_FAILED');
    deep.subscribe('h', 'mutation { revokeAllSessions }');
    const mutation = await deep.next('error');
    expect(mutation).toMatchObject({ id: 'h' });
    expect(mutation.payload[0].extensions.code).toBe('BAD_REQUEST');
    deep.send({ type: 'subscribe', id: 'big', payload: { query: `{ __typename ${' '.repeat(5000)}}` } });
    expect((await deep.closed).code).toBe(1009);
    // The sessions were not touched by the refused mutation.
    const sessions = await s.graphql('{ sessions { id } }', {}, bearer(me.accessToken));
    expect(sessions.data!.sessions).toHaveLength(1);
    ws.close();
  });

  it('Origin: none, the gateway’s own and CORS_ORIGINS are let in; any other origin is refused with 403 before the upgrade', async () => {
    const s = await server(store, { AUTH_ISSUER: 'https://auth.example.com', CORS_ORIGINS: 'https://app.example.com' });
    for (const origin of [undefined, 'https://auth.example.com', 'https://app.example.com']) {
      const ws = connect(s, origin ? { origin } : {});
      await ws.init();
      ws.close();
    }
    for (const origin of ['https://evil.example.com', 'null', 'http://app.example.com', 'https://app.example.com.evil.com']) {
      const ws = connect(s, { origin });
      await expect(ws.opened).rejects.toThrow('HTTP 403');
    }
    const elsewhere = connect(s, { path: '/other' });
    await expect(elsewhere.opened).rejects.toThrow('HTTP 404');
    // Without the subprotocol graphql-ws closes with 4406.
    const noProtocol = connect(s, { protocol: null });
    await noProtocol.opened;
    expect((await noProtocol.closed).code).toBe(4406);
  });

  it('graceful shutdown closes every socket with 1001; tessera_ws_connections counts open sockets', async () => {
    const metrics = new PrometheusMetrics();
    const s = await createTestServer({ store, deps: { metrics } });
    const gauge = async () => {
      const text = await metrics.registry.getSingleMetricAsString('tessera_ws_connections');
      return Number(/tessera_ws_connections (\d+)/.exec(text)?.[1]);
    };
    const me = await signUp(s);
    const a = connect(s);
    const b = connect(s);
    await a.init(bearerPayload(me.accessToken));
    await b.init();
    b.subscribe('s', SESSION_EVENTS);
    expect(await gauge()).toBe(2);
    const third = connect(s);
    await third.init();
    third.close();
    await third.closed;
    await waitFor('the gauge to drop', async () => (await gauge()) === 2);
    await s.close();
    expect((await a.closed).code).toBe(1001);
    expect((await b.closed).code).toBe(1001);
    expect(await gauge()).toBe(0);
  });
});
