import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { ISSUER, signup } from '../federation/support.js';
import { testKeySet } from '../helpers/keys.js';
import { bearer, createTestServer, LOGIN, TEST_PASSWORD, type TestServer } from '../helpers/testServer.js';
import { bearerPayload, connect, SESSION_EVENTS, waitFor, type WsClient } from './support.js';
import { startWsSubgraph, type WsSubgraph } from './wsSubgraph.js';

let subgraph: WsSubgraph;
let gateway: TestServer;
const clock = new ManualClock(Date.now());

beforeAll(async () => {
  subgraph = await startWsSubgraph({ clock });
  gateway = await createTestServer({
    store: 'memory',
    keys: await testKeySet(),
    clock,
    env: { AUTH_ISSUER: ISSUER, SUBGRAPHS: `ticks=${subgraph.url}`, LOG_LEVEL: 'warn' },
  });
  subgraph.pointAt(gateway.url);
});

afterAll(async () => {
  await gateway?.close();
  await subgraph?.stop();
});

/** Subscribes and waits until the subgraph has the subscription running. */
async function ticking(ws: WsClient, id: string, query: string, listening: number): Promise<void> {
  ws.subscribe(id, query);
  await waitFor('the subgraph to have the subscription', () => subgraph.listening >= listening);
}

describe('gateway mode: subscriptions passed through over graphql-transport-ws', { timeout: 20_000 }, () => {
  it('a subscription the owning subgraph serves whole reaches it with the signed context (never the client token); events come back', async () => {
    const me = await signup(gateway);
    const ws = connect(gateway);
    await ws.init(bearerPayload(me.accessToken));
    const before = subgraph.received.length;
    await ticking(ws, 't', 'subscription { ticks { n viewer note } }', 1);
    subgraph.emit(1);
    expect(await ws.event('t')).toEqual({ data: { ticks: { n: 1, viewer: me.user.id, note: 'note 1' } } });
    subgraph.emit(2);
    expect((await ws.event('t')).data.ticks.n).toBe(2);
    const init = subgraph.received.slice(before).find((r) => r.type === 'init')!;
    expect(init.user).toBe(me.user.id);
    expect(Object.keys(init.payload ?? {})).toEqual(['x-tessera-context']);
    expect(JSON.stringify(init.payload)).not.toContain(me.accessToken);

    // Renewal: once the context it holds is near its end, the subgraph gets a ping with a new one.
    const first = init.payload!['x-tessera-context'];
    clock.advance(52_000);
    await waitFor('a renewal ping', () => subgraph.received.slice(before).some((r) => r.type === 'ping'));
    const ping = subgraph.received.slice(before).find((r) => r.type === 'ping')!;
    expect(ping.user).toBe(me.user.id);
    expect(ping.payload!['x-tessera-context']).not.toBe(first);

    // The client completes: the upstream connection is closed too.
    ws.send({ type: 'complete', id: 't' });
    await waitFor('the upstream subscription to end', () => subgraph.listening === 0 && subgraph.connections === 0);
    ws.close();
  });

  it('edge authorization at subscribe time: a denied field is null with its error in every event; a denied root field refuses', async () => {
    const anonymous = connect(gateway);
    await anonymous.init();
    await ticking(anonymous, 'a', 'subscription { ticks { n note } }', 1);
    subgraph.emit(7);
    const event = await anonymous.event('a');
    expect(event.data).toEqual({ ticks: { n: 7, note: null } });
    expect(event.errors[0]).toMatchObject({ path: ['ticks', 'note'], extensions: { code: 'UNAUTHENTICATED' } });

    const me = await signup(gateway);
    const user = connect(gateway);
    await user.init(bearerPayload(me.accessToken));
    user.subscribe('admin', 'subscription { adminTicks { n } }');
    const refused = await user.next('error');
    expect(refused).toMatchObject({ id: 'admin', payload: [{ extensions: { code: 'FORBIDDEN' } }] });
    anonymous.close();
    user.close();
    await waitFor('no upstream subscriptions', () => subgraph.listening === 0);
  });

  it('anything else is refused with GRAPHQL_VALIDATION_FAILED: a subscription needing two subgraphs, a query', async () => {
    const me = await signup(gateway);
    const ws = connect(gateway);
    await ws.init(bearerPayload(me.accessToken));
    ws.subscribe('two', 'subscription { ticks { n owner { id email } } }');
    expect((await ws.next('error')).payload[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    ws.subscribe('q', '{ me { id } }');
    expect((await ws.next('error')).payload[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    ws.subscribe('bad', 'subscription { nope }');
    expect((await ws.next('error')).payload[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    ws.close();
  });

  it('sessionEvents (the in-process auth subgraph) runs in the gateway; revocation closes 4403 and the upstream connection goes too', async () => {
    const me = await signup(gateway);
    const ws = connect(gateway);
    await ws.init(bearerPayload(me.accessToken));
    ws.subscribe('s', SESSION_EVENTS);
    await ticking(ws, 't', 'subscription { ticks { n } }', 1);
    const other = (await gateway.graphql(LOGIN, { email: me.user.email, password: TEST_PASSWORD })).data!.login;
    expect((await ws.event('s')).data.sessionEvents).toMatchObject({ type: 'SIGNED_IN_ELSEWHERE', sessionId: other.session.id });
    await gateway.graphql('mutation { revokeSession }', {}, bearer(me.accessToken));
    expect((await ws.event('s')).data.sessionEvents.type).toBe('SESSION_REVOKED');
    expect((await ws.closed).code).toBe(4403);
    await waitFor('the upstream connection to close', () => subgraph.connections === 0);
  });
});
