import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ordersOf } from '../../examples/orders/orders.mjs';
import { ManualClock } from '../../src/clock.js';
import { ContextTokenSigner } from '../../src/tokens/contextTokens.js';
import { testKeySet } from '../helpers/keys.js';
import { freePort } from '../helpers/ports.js';
import { bearer, createTestServer, LOGIN, REFRESH, type TestServer, uniqueEmail } from '../helpers/testServer.js';
import { MemoryStore } from '../../src/store/memoryStore.js';
import type { Store } from '../../src/store/types.js';
import { decorate } from '../helpers/decorate.js';
import {
  contextHeader,
  type FederatedSetup,
  ISSUER,
  PASSWORD,
  signup,
  startFederated,
  startRecordingOrders,
} from './support.js';

// Node gives `import 'graphql'` and @apollo/gateway's require('graphql') one copy (the CommonJS
// build); vitest would resolve the import to the ESM build, a second copy whose schema types the
// gateway's schema is not an instance of. One copy, as in production.

const ME_ORDERS = '{ me { email orders { id status } } }';

let f: FederatedSetup;
beforeAll(async () => {
  f = await startFederated();
});
afterAll(() => f?.close());

/** Runs `action` and returns the headers of the requests the orders subgraph received meanwhile. */
async function seenBySubgraph<T>(action: () => Promise<T>) {
  const from = f.orders.requests.length;
  const value = await action();
  return { value, requests: f.orders.requests.slice(from) };
}

/** A direct call to the orders subgraph, skipping the gateway. */
async function direct(query: string, headers: Record<string, string> = {}) {
  const response = await fetch(f.orders.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query }),
  });
  return (await response.json()) as { data?: any; errors?: { extensions: Record<string, unknown> }[] };
}

const entityOrders = (userId: string) =>
  `{ _entities(representations: [{ __typename: "User", id: "${userId}" }]) { ... on User { orders { id } } } }`;

describe('a query across auth and the orders subgraph', () => {
  it('me { email orders { id } }: the subgraph reads the user the gateway vouches for', async () => {
    const email = uniqueEmail();
    const p = await signup(f.gateway, email);
    const { value: answer, requests } = await seenBySubgraph(() => f.gateway.graphql(ME_ORDERS, {}, bearer(p.accessToken)));
    expect(answer.errors).toEqual([]);
    expect(answer.data).toEqual({
      me: { email, orders: ordersOf(p.user.id).map(({ id, status }) => ({ id, status })) },
    });
    expect(requests).toHaveLength(1);
    const token = contextHeader(requests[0]);
    expect(decodeProtectedHeader(token!)).toEqual({ alg: 'EdDSA', kid: f.keys.active.kid, typ: 'tessera-ctx+jwt' });
    const claims = decodeJwt(token!);
    expect(claims).toMatchObject({ iss: ISSUER, aud: 'orders', sub: p.user.id, sid: p.session.id, roles: ['user'], scope: 'user' });
    expect(claims.exp! - claims.iat!).toBeLessThanOrEqual(60);
  });

  it('never forwards the client’s Authorization or Cookie', async () => {
    const p = await signup(f.gateway);
    const { requests } = await seenBySubgraph(() =>
      f.gateway.graphql(ME_ORDERS, {}, { ...bearer(p.accessToken), cookie: 'tessera_refresh=secret; other=1' }),
    );
    expect(requests).toHaveLength(1);
    expect(requests[0]).not.toHaveProperty('authorization');
    expect(requests[0]).not.toHaveProperty('cookie');
  });

  it('the subgraph gets the request id of the gateway’s response and log lines, never a bad one a client sent', async () => {
    const p = await signup(f.gateway);
    const sent = 'trace-4f1c2a';
    const { value: answer, requests } = await seenBySubgraph(() =>
      f.gateway.graphql(ME_ORDERS, {}, { ...bearer(p.accessToken), 'x-request-id': sent }),
    );
    expect(answer.headers.get('x-request-id')).toBe(sent);
    expect(requests.map((headers) => headers['x-request-id'])).toEqual([sent]);

    const bad = 'not a valid id; '.padEnd(200, 'x');
    const second = await seenBySubgraph(() => f.gateway.graphql(ME_ORDERS, {}, { ...bearer(p.accessToken), 'x-request-id': bad }));
    const assigned = second.value.headers.get('x-request-id');
    expect(assigned).toBeTruthy();
    expect(assigned).not.toBe(bad);
    expect(second.requests.map((headers) => headers['x-request-id'])).toEqual([assigned]);
  });

  it('a client-sent x-tessera-context never reaches a subgraph: the subgraph gets the gateway’s', async () => {
    const victim = await signup(f.gateway);
    const { requests: genuine } = await seenBySubgraph(() => f.gateway.graphql(ME_ORDERS, {}, bearer(victim.accessToken)));
    const stolen = contextHeader(genuine[0])!;

    // Signed in as someone else, replaying the victim's genuine context.
    const attacker = await signup(f.gateway);
    const { value: answer, requests } = await seenBySubgraph(() =>
      f.gateway.graphql(ME_ORDERS, {}, { ...bearer(attacker.accessToken), 'x-tessera-context': stolen }),
    );
    expect(answer.data!.me.orders[0].id).toBe(`${attacker.user.id}-3`);
    const received = contextHeader(requests[0]);
    expect(received).not.toBe(stolen);
    expect((await f.orders.verifier.verify({ 'x-tessera-context': received })).user?.id).toBe(attacker.user.id);

    // Anonymous, with the victim's context: the subgraph gets no context at all.
    const anonymous = await seenBySubgraph(() => f.gateway.graphql('{ orderStatuses }', {}, { 'x-tessera-context': stolen }));
    expect(anonymous.value.data).toEqual({ orderStatuses: ['PLACED', 'SHIPPED', 'DELIVERED'] });
    expect(anonymous.requests).toHaveLength(1);
    expect(anonymous.requests[0]).not.toHaveProperty('x-tessera-context');
  });

  it('a revoked session reaches no subgraph', async () => {
    const p = await signup(f.gateway);
    await f.gateway.graphql('mutation { revokeSession }', {}, bearer(p.accessToken));
    const { value: answer, requests } = await seenBySubgraph(() => f.gateway.graphql(ME_ORDERS, {}, bearer(p.accessToken)));
    expect(answer.data).toEqual({ me: null });
    expect(answer.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'SESSION_REVOKED' });
    expect(requests).toHaveLength(0);
  });
});

describe('the orders subgraph called directly, skipping the gateway', () => {
  it('without a context, orders is UNAUTHENTICATED', async () => {
    const answer = await direct(entityOrders('someone'));
    expect(answer.errors?.[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('a forged, wrongly addressed or unsigned context is UNAUTHENTICATED; a genuine one works', async () => {
    const p = await signup(f.gateway);
    const claims = decodeJwt(p.accessToken);
    const subject = { jti: String(claims.jti), sub: p.user.id, sid: p.session.id, roles: ['user'], scope: 'user', exp: claims.exp! };
    const sign = (keys = f.keys, audience = 'orders') =>
      new ContextTokenSigner({ keys, issuer: ISSUER, clock: new ManualClock(Date.now()) }).sign(subject, audience);
    const other = await testKeySet();
    const forged = await sign({ ...other, active: { ...other.active, kid: f.keys.active.kid } });
    const [, payload] = (await sign()).split('.');
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'tessera-ctx+jwt', kid: f.keys.active.kid })).toString('base64url')}.${payload}.`;
    for (const header of [forged, await sign(f.keys, 'billing'), unsigned, p.accessToken]) {
      const answer = await direct(entityOrders(p.user.id), { 'x-tessera-context': header });
      expect(answer.errors?.[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED' });
    }
    const genuine = await direct(entityOrders(p.user.id), { 'x-tessera-context': await sign() });
    expect(genuine.errors).toBeUndefined();
    expect(genuine.data._entities[0].orders).toHaveLength(3);
  });

  it('a genuine context of one user does not read another user’s orders', async () => {
    const p = await signup(f.gateway);
    const { requests } = await seenBySubgraph(() => f.gateway.graphql(ME_ORDERS, {}, bearer(p.accessToken)));
    const answer = await direct(entityOrders('somebody-else'), { 'x-tessera-context': contextHeader(requests[0])! });
    expect(answer.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN' });
  });
});

describe('the auth subgraph in gateway mode', () => {
  let standalone: TestServer;
  beforeAll(async () => {
    standalone = await createTestServer({ store: 'memory' });
  });
  afterAll(() => standalone?.close());

  /**
   * An error as a client relies on it: message, path, code, reason. (Not the development stack
   * trace, nor `locations`, which the gateway drops because they point into the subgraph's query.)
   */
  const shown = (answer: { errors: { message: string; path?: string[]; extensions: Record<string, unknown> }[] }) =>
    answer.errors.map(({ message, path, extensions: { stacktrace: _s, ...extensions } }) => ({ message, path, extensions }));

  it('errors keep their code and reason, exactly as the standalone server shows them', async () => {
    const queries: [string, Record<string, string>][] = [
      ['{ me { id } }', {}],
      ['{ me { id } }', bearer('not.a.token')],
      ['{ sessions { id } }', bearer('not.a.token')],
      [`mutation { login(email: "${uniqueEmail()}", password: "wrong password") { accessToken } }`, {}],
      ['mutation { refreshToken(refreshToken: "nope") { accessToken } }', {}],
      ['mutation { signup(email: "not-an-email", password: "correct horse battery") { accessToken } }', {}],
    ];
    for (const [query, headers] of queries) {
      const [federated, alone] = await Promise.all([f.gateway.graphql(query, {}, headers), standalone.graphql(query, {}, headers)]);
      expect(alone.errors.length, query).toBeGreaterThan(0);
      expect(shown(federated), query).toEqual(shown(alone));
      expect(federated.data, query).toEqual(alone.data);
    }
  });

  it('login, refresh and revocation work through the gateway', async () => {
    const email = uniqueEmail();
    await signup(f.gateway, email);
    const login = await f.gateway.graphql(LOGIN, { email, password: PASSWORD });
    expect(login.errors).toEqual([]);
    const refreshed = await f.gateway.graphql(REFRESH, { t: login.data!.login.refreshToken });
    expect(refreshed.errors).toEqual([]);
    const replay = await f.gateway.graphql(REFRESH, { t: login.data!.login.refreshToken }, {});
    expect(replay.errors).toEqual([]); // within the reuse grace: the same successor
    expect(replay.data!.refreshToken.refreshToken).toBe(refreshed.data!.refreshToken.refreshToken);
    const access = refreshed.data!.refreshToken.accessToken;
    const sessions = await f.gateway.graphql('{ sessions { id current } }', {}, bearer(access));
    expect(sessions.data!.sessions).toContainEqual({ id: login.data!.login.session.id, current: true });
    expect((await f.gateway.graphql('mutation { revokeAllSessions }', {}, bearer(access))).data).toEqual({ revokeAllSessions: 2 });
  });

  it('the refresh cookie is set, read and cleared through the gateway (REFRESH_TOKEN_TRANSPORT=cookie)', async () => {
    const cookies = await startFederated({ env: { REFRESH_TOKEN_TRANSPORT: 'cookie' } });
    try {
      const p = await signup(cookies.gateway);
      expect(p.refreshToken).toBeNull();
      const login = await cookies.gateway.graphql(LOGIN, { email: p.user.email, password: PASSWORD }, { host: 'localhost:4000' });
      const [set] = login.headers.getSetCookie();
      expect(set).toMatch(/^tessera_refresh=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
      const cookie = set!.split(';')[0]!;
      const refreshed = await cookies.gateway.graphql(REFRESH, {}, { host: 'localhost:4000', cookie });
      expect(refreshed.errors).toEqual([]);
      const next = refreshed.headers.getSetCookie()[0]!.split(';')[0]!;
      const out = await cookies.gateway.graphql('mutation { revokeSession }', {}, { host: 'localhost:4000', cookie: next });
      expect(out.data).toEqual({ revokeSession: true });
      expect(out.headers.getSetCookie()[0]).toMatch(/^tessera_refresh=; .*Max-Age=0$/);
    } finally {
      await cookies.close();
    }
  });

  it('User is an entity other subgraphs extend, resolved only for the caller', async () => {
    const p = await signup(f.gateway);
    const sdl = await f.gateway.graphql('{ __type(name: "User") { fields { name } } }');
    expect(sdl.data!.__type.fields.map((field: { name: string }) => field.name)).toEqual(['id', 'email', 'roles', 'createdAt', 'emailVerified', 'disabled', 'hasPassword', 'orders']);
    // The gateway plans `me` from auth; a reference to another user's account resolves to FORBIDDEN.
    const { createAuthSubgraphSchema } = await import('../../src/federation/authSubgraph.js');
    const { graphql } = await import('graphql');
    const schema = createAuthSubgraphSchema();
    const context = { user: { id: p.user.id }, loaders: { users: { load: async (id: string) => ({ id, email: 'x@example.com' }) } } };
    const mine = await graphql({
      schema,
      source: `{ _entities(representations: [{ __typename: "User", id: "${p.user.id}" }]) { ... on User { email } } }`,
      contextValue: context,
    });
    expect(mine.data).toEqual({ _entities: [{ email: 'x@example.com' }] });
    const theirs = await graphql({
      schema,
      source: '{ _entities(representations: [{ __typename: "User", id: "someone-else" }]) { ... on User { email } } }',
      contextValue: context,
    });
    expect(theirs.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN' });
  });
});

describe('authorization at the edge', () => {
  it('@requiresScopes: without orders:read, each total is null with FORBIDDEN and the rest answers', async () => {
    const p = await signup(f.gateway);
    const answer = await f.gateway.graphql('{ me { orders { id total } } }', {}, bearer(p.accessToken));
    expect(answer.data!.me.orders.map((o: { total: unknown }) => o.total)).toEqual([null, null, null]);
    expect(answer.data!.me.orders.map((o: { id: string }) => o.id)).toEqual(ordersOf(p.user.id).map((o) => o.id));
    expect(answer.errors.map((e) => [e.path, e.extensions.code])).toEqual([
      [['me', 'orders', 0, 'total'], 'FORBIDDEN'],
      [['me', 'orders', 1, 'total'], 'FORBIDDEN'],
      [['me', 'orders', 2, 'total'], 'FORBIDDEN'],
    ]);
  });

  it('@requiresScopes: with orders:read in the access token, the totals answer', async () => {
    const p = await signup(f.gateway);
    const { token } = await f.gateway.app.accessTokens.issue({
      userId: p.user.id,
      sessionId: p.session.id,
      roles: ['user'],
      scope: 'user orders:read',
    });
    const answer = await f.gateway.graphql('{ me { orders { id total } } }', {}, bearer(token));
    expect(answer.errors).toEqual([]);
    expect(answer.data!.me.orders).toEqual(ordersOf(p.user.id).map(({ id, total }) => ({ id, total })));
  });

  it('@authenticated: an anonymous caller’s orders are refused at the gateway; the subgraph is not called', async () => {
    const email = uniqueEmail();
    await signup(f.gateway, email);
    const { value: answer, requests } = await seenBySubgraph(() =>
      f.gateway.graphql(`mutation { login(email: "${email}", password: "${PASSWORD}") { user { id orders { id } } } }`),
    );
    expect(requests).toHaveLength(0);
    expect(answer.errors[0]).toMatchObject({
      path: ['login', 'user', 'orders'],
      extensions: { code: 'UNAUTHENTICATED', reason: 'TOKEN_MISSING' },
    });
  });
});

describe('signed contexts are reused', () => {
  it('one signature per session and subgraph, across a refresh, until 10 s before its exp; never past it', async () => {
    const clock = new ManualClock(Date.now());
    // ES256 signatures are randomized: an identical header means the signature was reused.
    const reused = await startFederated({ clock, keys: await testKeySet('ES256') });
    try {
      const p = await signup(reused.gateway);
      const seen = async (accessToken: string) => {
        const from = reused.orders.requests.length;
        const answer = await reused.gateway.graphql(ME_ORDERS, {}, bearer(accessToken));
        expect(answer.errors).toEqual([]);
        return contextHeader(reused.orders.requests[from])!;
      };
      const first = await seen(p.accessToken);
      expect(await seen(p.accessToken)).toBe(first);
      clock.advance(20_000);
      // A new access token of the same session: the same signed context.
      const refreshed = await reused.gateway.graphql(REFRESH, { t: p.refreshToken });
      const access2 = refreshed.data!.refreshToken.accessToken as string;
      expect(await seen(access2)).toBe(first);
      clock.advance(29_000); // 11 s left
      expect(await seen(access2)).toBe(first);
      clock.advance(1_000); // 10 s left: a new one, valid for 60 s from now
      const second = await seen(access2);
      expect(second).not.toBe(first);
      expect(decodeJwt(second).iat).toBe(decodeJwt(first).iat! + 50);
      expect(decodeJwt(second).exp! * 1000).toBeGreaterThan(clock.now() + 50_000);
    } finally {
      await reused.close();
    }
  });

  it('a revoked session’s context is never sent again; its other tokens are refused before any subgraph call', async () => {
    const clock = new ManualClock(Date.now());
    const revoking = await startFederated({ clock, keys: await testKeySet('ES256') });
    try {
      const p = await signup(revoking.gateway);
      const first = await revoking.gateway.graphql(ME_ORDERS, {}, bearer(p.accessToken));
      expect(first.errors).toEqual([]);
      const refreshed = await revoking.gateway.graphql(REFRESH, { t: p.refreshToken });
      const access2 = refreshed.data!.refreshToken.accessToken as string;
      const revoked = await revoking.gateway.graphql('mutation { revokeSession }', {}, bearer(access2));
      expect(revoked.data).toEqual({ revokeSession: true });
      const before = revoking.orders.requests.length;
      const answer = await revoking.gateway.graphql(ME_ORDERS, {}, bearer(p.accessToken));
      expect(revoking.orders.requests.length).toBe(before);
      expect(answer.errors[0]).toMatchObject({ extensions: { code: 'UNAUTHENTICATED', reason: 'SESSION_REVOKED' } });
      // A new session of the same user gets a context of its own, never the revoked one's.
      const again = await signup(revoking.gateway);
      const from = revoking.orders.requests.length;
      expect((await revoking.gateway.graphql(ME_ORDERS, {}, bearer(again.accessToken))).errors).toEqual([]);
      expect(decodeJwt(contextHeader(revoking.orders.requests[from])!).sid).toBe(decodeJwt(again.accessToken).sid);
    } finally {
      await revoking.close();
    }
  });
});

describe('production (NODE_ENV=production) in gateway mode', () => {
  it('internal errors stay internal; contract errors and edge denials keep their codes', async () => {
    const orders = await startRecordingOrders();
    const memory = new MemoryStore();
    const store = decorate<Store>(memory, {
      getUsers: async () => {
        throw new Error('internal detail: user record is corrupt');
      },
    });
    const gateway = await createTestServer({
      store,
      env: {
        NODE_ENV: 'production',
        REDIS_URL: 'redis://127.0.0.1:6379',
        SIGNING_KEYS: '/run/secrets/keys.json',
        SIGNUP_ENABLED: 'true',
        AUTH_ISSUER: ISSUER,
        SUBGRAPHS: `orders=${orders.url}`,
      },
    });
    orders.pointAt(gateway.url);
    try {
      const p = await signup(gateway);
      const internal = await gateway.graphql('{ me { email } }', {}, bearer(p.accessToken));
      expect(internal.errors).toEqual([{ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }]);
      const missing = await gateway.graphql('{ me { id } }');
      expect(missing.errors[0]).toMatchObject({ extensions: { code: 'UNAUTHENTICATED', reason: 'TOKEN_MISSING' } });
      expect(JSON.stringify(missing.errors)).not.toMatch(/serviceName|stacktrace/);
      const denied = await gateway.graphql('{ me { orders { total } } }', {}, bearer(p.accessToken));
      expect(denied.errors.map((e) => e.extensions.code)).toEqual(['FORBIDDEN', 'FORBIDDEN', 'FORBIDDEN']);
      expect((await gateway.graphql('{ __schema { queryType { name } } }')).data).toBeFalsy();
    } finally {
      await gateway.close();
      await orders.stop();
    }
  });
});

describe('starting', () => {
  it('SUBGRAPHS naming a subgraph that does not answer stops the start with a message naming it', async () => {
    const port = await freePort();
    await expect(
      createTestServer({ store: 'memory', env: { SUBGRAPHS: `orders=http://127.0.0.1:${port}/graphql`, LOG_LEVEL: 'silent' } }),
    ).rejects.toThrow(/"orders"/);
  });

  it('without SUBGRAPHS or SUPERGRAPH_FILE the auth schema is served alone, as before', async () => {
    const alone = await createTestServer({ store: 'memory' });
    try {
      const types = await alone.graphql('{ __schema { types { name } } }');
      const names = types.data!.__schema.types.map((t: { name: string }) => t.name);
      expect(names).toContain('User');
      expect(names).not.toContain('Order');
      expect(names).not.toContain('_Entity');
      const service = await alone.graphql('{ _service { sdl } }');
      expect(service.errors[0]?.extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    } finally {
      await alone.close();
    }
  });
});
