import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createTestServer, LOGIN, REFRESH, type TestServer, uniqueEmail } from '../helpers/testServer.js';
import { ISSUER, PASSWORD, signup } from './support.js';

/**
 * Cache-Control (contract section 13): an answer that carries a token is `no-store`; an answer to
 * a signed-in caller is never `public`; an anonymous answer in gateway mode has Apollo's
 * cache-control, from the subgraphs' hints.
 */

/** A public catalog subgraph whose fields carry cache hints, as a subgraph author writes them. */
const CATALOG = `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])

  enum CacheControlScope { PUBLIC PRIVATE }
  directive @cacheControl(maxAge: Int, scope: CacheControlScope, inheritMaxAge: Boolean) on FIELD_DEFINITION | OBJECT | INTERFACE | UNION

  type Query {
    products: [Product!]! @cacheControl(maxAge: 60)
    dealOfTheMinute: Product @cacheControl(maxAge: 30)
    basket: [Product!]! @cacheControl(maxAge: 60, scope: PRIVATE)
    live: Int
  }

  type Product @key(fields: "id") @cacheControl(maxAge: 60) {
    id: ID!
    name: String!
  }
`;

const PRODUCTS = [
  { id: 'p1', name: 'Tea' },
  { id: 'p2', name: 'Scones' },
];

async function startCatalog() {
  const server = new ApolloServer({
    schema: buildSubgraphSchema({
      typeDefs: parse(CATALOG),
      resolvers: {
        Query: {
          products: () => PRODUCTS,
          dealOfTheMinute: () => PRODUCTS[1],
          basket: () => PRODUCTS.slice(0, 1),
          live: () => 42,
        },
        Product: { __resolveReference: ({ id }: { id: string }) => PRODUCTS.find((p) => p.id === id) },
      },
    }),
    plugins: [ApolloServerPluginInlineTraceDisabled()],
  });
  const { url } = await startStandaloneServer(server, { listen: { port: 0, host: '127.0.0.1' } });
  return { url, stop: () => server.stop() };
}

/** The directives of a Cache-Control value, in order of name (`max-age=60, public` → ['max-age=60', 'public']). */
const directives = (value: string | null) =>
  (value ?? '')
    .split(',')
    .map((d) => d.trim())
    .filter(Boolean)
    .sort();

describe('Cache-Control in gateway mode', () => {
  let catalog: Awaited<ReturnType<typeof startCatalog>>;
  let gateway: TestServer;
  beforeAll(async () => {
    catalog = await startCatalog();
    gateway = await createTestServer({
      store: 'memory',
      env: { AUTH_ISSUER: ISSUER, SUBGRAPHS: `catalog=${catalog.url}`, LOG_LEVEL: 'warn' },
    });
  });
  afterAll(async () => {
    await gateway?.close();
    await catalog?.stop();
  });

  it("an anonymous query of hinted fields gets Apollo's cache-control: public, max-age=60", async () => {
    const answer = await gateway.graphql('{ products { id name } }');
    expect(answer.errors).toEqual([]);
    expect(answer.data).toEqual({ products: PRODUCTS });
    expect(directives(answer.headers.get('cache-control'))).toEqual(['max-age=60', 'public']);
    // The shortest hint wins, as Apollo computes it.
    const both = await gateway.graphql('{ products { id } dealOfTheMinute { name } }');
    expect(directives(both.headers.get('cache-control'))).toEqual(['max-age=30', 'public']);
    // A PRIVATE hint stays private.
    const basket = await gateway.graphql('{ basket { id } }');
    expect(directives(basket.headers.get('cache-control'))).toEqual(['max-age=60', 'private']);
  });

  it('an anonymous answer without hints, or with an error, is no-store', async () => {
    expect((await gateway.graphql('{ live }')).headers.get('cache-control')).toBe('no-store');
    expect((await gateway.graphql('{ products { id } live }')).headers.get('cache-control')).toBe('no-store');
    // `me` needs a user: an error, so nothing may be cached.
    const withError = await gateway.graphql('{ products { id } me { id } }');
    expect(withError.errors[0]?.extensions.code).toBe('UNAUTHENTICATED');
    expect(withError.headers.get('cache-control')).toBe('no-store');
  });

  it('a signed-in caller is never answered public, whatever the hints', async () => {
    const p = await signup(gateway);
    const answer = await gateway.graphql('{ products { id name } }', {}, bearer(p.accessToken));
    expect(answer.data).toEqual({ products: PRODUCTS });
    expect(answer.headers.get('cache-control')).toBe('no-store');
    const mixed = await gateway.graphql('{ products { id } me { id } }', {}, bearer(p.accessToken));
    expect(mixed.errors).toEqual([]);
    expect(mixed.headers.get('cache-control')).toBe('no-store');
    // Not signed in, but sending credentials: still never public.
    const bad = await gateway.graphql('{ products { id } }', {}, bearer('not-a-token'));
    expect(bad.data).toEqual({ products: PRODUCTS.map(({ id }) => ({ id })) });
    expect(bad.headers.get('cache-control')).toBe('no-store');
  });

  it('answers that carry a token are no-store', async () => {
    const email = uniqueEmail();
    await signup(gateway, email);
    const login = await gateway.graphql(LOGIN, { email, password: PASSWORD });
    expect(login.errors).toEqual([]);
    expect(login.headers.get('cache-control')).toBe('no-store');
    const refresh = await gateway.graphql(REFRESH, { t: login.data!.login.refreshToken });
    expect(refresh.errors).toEqual([]);
    expect(refresh.headers.get('cache-control')).toBe('no-store');
  });
});

describe('Cache-Control without a gateway (the auth schema alone)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await createTestServer({ store: 'memory' });
  });
  afterAll(() => server.close());

  it('every GraphQL answer is no-store', async () => {
    expect((await server.graphql('{ __typename }')).headers.get('cache-control')).toBe('no-store');
    const p = await signup(server);
    expect((await server.graphql('{ me { id } }', {}, bearer(p.accessToken))).headers.get('cache-control')).toBe('no-store');
  });
});
