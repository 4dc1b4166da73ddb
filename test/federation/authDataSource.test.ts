import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { AuthSubgraphDataSource, callerKeyField } from '../../src/federation/authDataSource.js';
import type { GraphQLContext } from '../../src/graphql/context.js';
import { MemoryStore } from '../../src/store/memoryStore.js';
import type { Store } from '../../src/store/types.js';
import { decorate } from '../helpers/decorate.js';
import { ordersOf } from '../../examples/orders/orders.mjs';
import { bearer } from '../helpers/testServer.js';
import { signup, startFederated } from './support.js';


describe('callerKeyField: a fetch that asks only for the caller’s User key', () => {
  it.each([
    ['{ me { __typename id } }', 'me'],
    ['query { me { id __typename } }', 'me'],
    ['{ me { id } }', 'me'],
    ['{ caller: me { __typename id } }', 'caller'],
  ])('%s → %s', (query, field) => expect(callerKeyField(parse(query))).toBe(field));

  it.each([
    '{ me { __typename id email } }',
    '{ me { __typename id } sessions { id } }',
    '{ me { __typename theId: id } }',
    '{ me { __typename id @include(if: true) } }',
    '{ me @skip(if: false) { id } }',
    '{ me { ... on User { id } } }',
    'mutation { revokeSession }',
    'query Q($x: Boolean!) { me { id @include(if: $x) } }',
    '{ me { id } } { me { id } }',
  ])('not %s', (query) => expect(callerKeyField(parse(query))).toBeNull());
});

const SDL = `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
  type Query { me: User }
  type User @key(fields: "id") { id: ID! email: String! }
`;

function dataSource() {
  const calls = { me: 0 };
  const schema = buildSubgraphSchema({
    typeDefs: parse(SDL),
    resolvers: { Query: { me: () => (calls.me++, { id: 'from-resolver', email: 'a@example.com' }) } } as never,
  });
  return { calls, source: new AuthSubgraphDataSource(schema) };
}

const user = { id: 'user-1', sessionId: 's', roles: [], scopes: [], claims: {} } as unknown as GraphQLContext['user'];
const process = (source: AuthSubgraphDataSource, query: string, context: Partial<GraphQLContext>) =>
  source.process({
    request: { query },
    context: context as GraphQLContext,
    incomingRequestContext: {} as never,
    kind: 'incoming operation',
  } as never);

describe('AuthSubgraphDataSource', () => {
  it('answers the caller’s key from the verified context without running a resolver', async () => {
    const { calls, source } = dataSource();
    expect(await process(source, '{ me { __typename id } }', { user })).toEqual({ data: { me: { __typename: 'User', id: 'user-1' } } });
    expect(calls.me).toBe(0);
  });

  it('executes anything else (and the key fetch of an anonymous caller), parsing each document once', async () => {
    const { calls, source } = dataSource();
    const full = await process(source, '{ me { id email } }', { user });
    expect(full).toEqual({ data: { me: { id: 'from-resolver', email: 'a@example.com' } } });
    expect(await process(source, '{ me { id email } }', { user })).toEqual(full);
    expect(await process(source, '{ me { __typename id } }', { user: null })).toEqual({ data: { me: { __typename: 'User', id: 'from-resolver' } } });
    expect(calls.me).toBe(3);
  });

  it('an invalid document gets graphql-js’s own errors', async () => {
    const { source } = dataSource();
    const answer = await process(source, '{ nope }', { user });
    expect(answer.errors?.[0]?.message).toMatch(/Cannot query field "nope"/);
  });
});

describe('gateway mode: the auth subgraph’s part of a plan', () => {
  it('me extended by another subgraph: the auth fetch touches no store once the session is confirmed', async () => {
    const calls: string[] = [];
    const memory = new MemoryStore();
    const counted = new Proxy(memory, {
      get(target, name) {
        const value: unknown = Reflect.get(target, name);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          calls.push(String(name));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    }) as Store;
    const setup = await startFederated({ store: decorate<Store>(counted, {}) });
    try {
      const p = await signup(setup.gateway);
      const query = '{ me { id orders { id } } }';
      const first = await setup.gateway.graphql(query, {}, bearer(p.accessToken));
      expect(first.errors).toEqual([]);
      calls.length = 0;
      const second = await setup.gateway.graphql(query, {}, bearer(p.accessToken));
      expect(second.errors).toEqual([]);
      expect(second.data).toEqual({ me: { id: p.user.id, orders: ordersOf(p.user.id).map(({ id }) => ({ id })) } });
      expect(first.data!.me.orders.length).toBeGreaterThan(0);
      expect(calls.filter((name) => name !== 'subscribe' && name !== 'ping')).toEqual([]);
    } finally {
      await setup.close();
    }
  });
});
