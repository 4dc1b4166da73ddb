import { createHash } from 'node:crypto';
import { composeServices } from '@apollo/composition';
import { ApolloGateway, LocalGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer, type ApolloServerOptionsWithGateway, type BaseContext } from '@apollo/server';
import { buildSubgraphSchema } from '@apollo/subgraph';
import {
  type DocumentNode,
  type FormattedExecutionResult,
  GraphQLError,
  type GraphQLFormattedError,
  type GraphQLSchema,
  execute,
  parse,
  print,
  validate,
} from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// One graphql instance, as under Node: @apollo/* require() the CommonJS build, Vite would import the .mjs.
import {
  type AuthRequirements,
  type Caller,
  type Denial,
  applyDenials,
  authorizeOperation,
  collectRequirements,
  hasRequirements,
} from '../../src/federation/edgeAuthorization.js';
import { acceptEdgeEnforcedFeatures } from '../../src/federation/securityFeatures.js';

type GatewayInterface = ApolloServerOptionsWithGateway<BaseContext>['gateway'];
type SubgraphResolvers = Extract<Parameters<typeof buildSubgraphSchema>[0], { typeDefs: unknown }>['resolvers'];

const FEDERATION = `extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key", "@authenticated", "@requiresScopes"])`;

const ACCOUNTS = `${FEDERATION}
type Query {
  me: User @authenticated
  user(id: ID!): User
  users: [User!]!
  publicInfo: String
  secret: String @requiresScopes(scopes: [["a", "b"], ["c"]])
  account: Account
  strict: Strict
  search: [SearchResult!]!
  node(id: ID!): Node
}
interface Node { id: ID! }
type User implements Node @key(fields: "id") {
  id: ID!
  name: String
  email: String! @authenticated
  internalNote: String @requiresScopes(scopes: [["admin"]])
}
type Account implements Node @key(fields: "id") @authenticated { id: ID! balance: Int label: String }
type Strict { id: ID! code: String! @requiresScopes(scopes: [["ops"]]) }
union SearchResult = User | Account
type Mutation { rename(name: String!): User @authenticated ping: Boolean }
`;

const REVIEWS = `${FEDERATION}
type User @key(fields: "id") { id: ID! reviews: [Review!]! }
type Review { id: ID! body: String rating: Int! @requiresScopes(scopes: [["reviews:read"]]) }
`;

function compose(subgraphs: Record<string, string>): { supergraphSdl: string; apiSchema: GraphQLSchema } {
  const result = composeServices(
    Object.entries(subgraphs).map(([name, sdl]) => ({ name, typeDefs: parse(sdl), url: `http://${name}.test` })),
  );
  if (result.errors) throw new Error(result.errors.map((e) => e.message).join('\n'));
  return { supergraphSdl: result.supergraphSdl, apiSchema: result.schema.toAPISchema().toGraphQLJSSchema() };
}

const { supergraphSdl, apiSchema } = compose({ accounts: ACCOUNTS, reviews: REVIEWS });
const requirements = collectRequirements(supergraphSdl);

const ANONYMOUS: Caller = { authenticated: false, scopes: new Set() };
const signedIn = (...scopes: string[]): Caller => ({ authenticated: true, scopes: new Set(scopes) });

const ADA = {
  __typename: 'User',
  id: 'u1',
  name: 'Ada',
  email: 'ada@example.test',
  internalNote: 'vip',
  reviews: [{ id: 'r1', body: 'good', rating: 5 }],
};
const BOB = { __typename: 'User', id: 'u2', name: 'Bob', email: 'bob@example.test', internalNote: null, reviews: [] };
const ACCOUNT = { __typename: 'Account', id: 'a1', balance: 10, label: 'main' };
const resolved: string[] = [];
const rootValue = {
  me: ADA,
  user: ({ id }: { id: string }) => [ADA, BOB].find((u) => u.id === id) ?? null,
  users: [ADA, BOB],
  publicInfo: 'hello',
  secret: () => {
    resolved.push('secret');
    return 's3cret';
  },
  account: ACCOUNT,
  strict: { id: 's1', code: 'X' },
  search: [ADA, ACCOUNT, BOB],
  node: ({ id }: { id: string }) => [ADA, BOB, ACCOUNT].find((n) => n.id === id) ?? null,
  rename: ({ name }: { name: string }) => ({ ...ADA, name }),
  ping: true,
};

interface Run {
  document: DocumentNode;
  rewritten: DocumentNode;
  denials: Denial[];
  response: FormattedExecutionResult;
}

/** authorizeOperation, then execution of the rewritten document against the API schema, then applyDenials. */
async function run(query: string, caller: Caller, variables?: Record<string, unknown>, operationName?: string): Promise<Run> {
  const document = parse(query);
  expect(validate(apiSchema, document)).toEqual([]);
  const { document: rewritten, denials } = authorizeOperation({ schema: apiSchema, document, operationName, requirements, caller });
  expect(validate(apiSchema, rewritten)).toEqual([]);
  const executed = await execute({ schema: apiSchema, document: rewritten, rootValue, variableValues: variables, operationName });
  const formatted: FormattedExecutionResult = {
    data: executed.data,
    ...(executed.errors ? { errors: executed.errors.map((e) => e.toJSON()) } : {}),
  };
  return { document, rewritten, denials, response: applyDenials(formatted, denials) };
}

const codes = (response: FormattedExecutionResult) =>
  (response.errors ?? []).map((e) => ({ path: e.path, code: e.extensions?.code }));

describe('the composed supergraph (how @apollo/composition 2.14 writes the directives)', () => {
  it('links the two features for SECURITY and applies them under their plain names', () => {
    expect(supergraphSdl).toContain('@link(url: "https://specs.apollo.dev/authenticated/v0.1", for: SECURITY)');
    expect(supergraphSdl).toContain('@link(url: "https://specs.apollo.dev/requiresScopes/v0.1", for: SECURITY)');
    expect(supergraphSdl).toContain('directive @requiresScopes(scopes: [[requiresScopes__Scope!]!]!) on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM');
    expect(supergraphSdl).toMatch(/me: User @join__field\(graph: ACCOUNTS\) @authenticated/);
    expect(supergraphSdl).toContain('@requiresScopes(scopes: [["a", "b"], ["c"]])');
    // Composition copies an implementation's type-level mark onto the interface.
    expect(supergraphSdl).toMatch(/interface Node\s+@join__type\(graph: ACCOUNTS\)\s+@authenticated/);
  });

  it('keeps no trace of them in the API schema', () => {
    expect(apiSchema.getDirective('authenticated')).toBeUndefined();
    expect(apiSchema.getDirective('requiresScopes')).toBeUndefined();
  });
});

describe('collectRequirements', () => {
  it('finds marks on fields, object types and interfaces', () => {
    expect(requirements.fields.get('Query.me')).toEqual({ authenticated: true, scopes: [] });
    expect(requirements.fields.get('Query.secret')).toEqual({ authenticated: false, scopes: [[['a', 'b'], ['c']]] });
    expect(requirements.types.get('Account')).toEqual({ authenticated: true, scopes: [] });
    expect(requirements.types.get('Node')).toEqual({ authenticated: true, scopes: [] });
    expect(requirements.fields.get('Query.user')).toBeUndefined();
    expect(hasRequirements(requirements)).toBe(true);
  });

  it('follows @link imports that rename the directives', () => {
    const renamed = `extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key", { name: "@authenticated", as: "@signedIn" }, { name: "@requiresScopes", as: "@scoped" }])
      type Query { mine: String @signedIn held: String @scoped(scopes: [["x"]]) open: String }`;
    const { supergraphSdl: sdl } = compose({ a: renamed });
    expect(sdl).toContain('import: [{name: "@authenticated", as: "@signedIn"}]');
    const found = collectRequirements(sdl);
    expect(found.fields.get('Query.mine')).toEqual({ authenticated: true, scopes: [] });
    expect(found.fields.get('Query.held')).toEqual({ authenticated: false, scopes: [[['x']]] });
    expect(found.fields.size).toBe(2);
    expect(collectRequirements(acceptEdgeEnforcedFeatures(sdl))).toEqual(found);
  });

  it('reads the supergraph the gateway is given (for: SECURITY dropped) the same way', () => {
    const gatewaySdl = acceptEdgeEnforcedFeatures(supergraphSdl);
    expect(gatewaySdl).not.toContain('for: SECURITY');
    expect(collectRequirements(gatewaySdl)).toEqual(requirements);
  });

  it('finds marks on scalars and enums, and on a subgraph SDL linking Federation', () => {
    const sdl = `${FEDERATION}
      scalar Secret @requiresScopes(scopes: [["s"]])
      enum Level @authenticated { LOW HIGH }
      type Query { secret: Secret level: Level }`;
    const found = collectRequirements(sdl);
    expect(found.types.get('Secret')).toEqual({ authenticated: false, scopes: [[['s']]] });
    expect(found.types.get('Level')).toEqual({ authenticated: true, scopes: [] });
    const namespaced = collectRequirements(`extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key"])
      type Query { plain: String @federation__authenticated }`);
    expect(namespaced.fields.get('Query.plain')).toEqual({ authenticated: true, scopes: [] });
  });

  it('is empty for a supergraph without marks, and then nothing is touched', () => {
    const { supergraphSdl: sdl, apiSchema: schema } = compose({
      a: `extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key"]) type Query { hello: String }`,
    });
    const none = collectRequirements(sdl);
    expect(hasRequirements(none)).toBe(false);
    const document = parse('{ hello }');
    const out = authorizeOperation({ schema, document, requirements: none, caller: ANONYMOUS });
    expect(out.document).toBe(document);
    expect(out.denials).toEqual([]);
  });
});

describe('authorizeOperation + applyDenials', () => {
  it('@authenticated: denies an anonymous caller (UNAUTHENTICATED), allows a signed-in one', async () => {
    const query = '{ publicInfo me { id name } }';
    const anonymous = await run(query, ANONYMOUS);
    expect(anonymous.response.data).toEqual({ publicInfo: 'hello', me: null });
    expect(anonymous.response.errors).toEqual([
      {
        message: 'You must be signed in to access "Query.me".',
        path: ['me'],
        extensions: { code: 'UNAUTHENTICATED', reason: 'TOKEN_MISSING' },
      },
    ]);
    const member = await run(query, signedIn());
    expect(member.rewritten).toBe(member.document);
    expect(member.denials).toEqual([]);
    expect(member.response).toEqual({ data: { publicInfo: 'hello', me: { id: 'u1', name: 'Ada' } } });
  });

  it('carries the caller’s reason for not being signed in', async () => {
    const { response } = await run('{ me { id } }', { ...ANONYMOUS, reason: 'TOKEN_EXPIRED' });
    expect(response.errors?.[0]?.extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'TOKEN_EXPIRED' });
  });

  it.each<[string, Caller, 'UNAUTHENTICATED' | 'FORBIDDEN' | null]>([
    ['{a,b}', signedIn('a', 'b'), null],
    ['{c}', signedIn('c'), null],
    ['{a,b,c,z}', signedIn('a', 'b', 'c', 'z'), null],
    ['{a}', signedIn('a'), 'FORBIDDEN'],
    ['{b,z}', signedIn('b', 'z'), 'FORBIDDEN'],
    ['no scopes', signedIn(), 'FORBIDDEN'],
    ['anonymous', ANONYMOUS, 'UNAUTHENTICATED'],
    ['anonymous claiming scopes', { authenticated: false, scopes: new Set(['c']) }, 'UNAUTHENTICATED'],
  ])('@requiresScopes([["a","b"],["c"]]) with %s', async (_name, caller, expected) => {
    resolved.length = 0;
    const { response } = await run('{ secret publicInfo }', caller);
    expect(response.data).toEqual({ secret: expected ? null : 's3cret', publicInfo: 'hello' });
    expect(codes(response)).toEqual(expected ? [{ path: ['secret'], code: expected }] : []);
    // A denied field is never resolved.
    expect(resolved).toEqual(expected ? [] : ['secret']);
  });

  it('a type-level mark applies to every field returning that type', async () => {
    const { response, denials } = await run('{ account { id balance } search { ... on User { name } } }', ANONYMOUS);
    expect(denials.map((d) => d.path)).toEqual([['account']]);
    expect(response.data).toEqual({ account: null, search: [{ name: 'Ada' }, {}, { name: 'Bob' }] });
    expect(codes(response)).toEqual([{ path: ['account'], code: 'UNAUTHENTICATED' }]);
  });

  it('a fragment on a marked type is left out where it matches, with an error at the enclosing object (as Router does)', async () => {
    const { response, denials } = await run('{ search { ... on Account { id balance } ... on User { name } } }', ANONYMOUS);
    expect(denials.map((d) => [d.path, d.omit])).toEqual([
      [['search', 'id'], true],
      [['search', 'balance'], true],
    ]);
    expect(response.data).toEqual({ search: [{ name: 'Ada' }, {}, { name: 'Bob' }] });
    expect(response.errors).toEqual([
      {
        message: 'You must be signed in to access "Account".',
        path: ['search', 1],
        extensions: { code: 'UNAUTHENTICATED', reason: 'TOKEN_MISSING' },
      },
    ]);
    const member = await run('{ search { ... on Account { id balance } ... on User { name } } }', signedIn());
    expect(member.response.data).toEqual({ search: [{ name: 'Ada' }, { id: 'a1', balance: 10 }, { name: 'Bob' }] });
  });

  it('an interface that composition marked from its implementations is checked too', async () => {
    const { response } = await run('{ node(id: "u1") { id } }', ANONYMOUS);
    expect(response.data).toEqual({ node: null });
    expect(codes(response)).toEqual([{ path: ['node'], code: 'UNAUTHENTICATED' }]);
    expect((await run('{ node(id: "a1") { id ... on Account { balance } } }', signedIn())).response.data).toEqual({
      node: { id: 'a1', balance: 10 },
    });
  });

  it('reports the path with the alias', async () => {
    const { response, denials } = await run('{ mine: me { id } who: user(id: "u1") { address: email name } }', ANONYMOUS);
    expect(denials.map((d) => d.path)).toEqual([['mine'], ['who', 'address']]);
    expect(codes(response)).toEqual([
      { path: ['mine'], code: 'UNAUTHENTICATED' },
      { path: ['who', 'address'], code: 'UNAUTHENTICATED' },
    ]);
    // email is String!: its null makes `who` null.
    expect(response.data).toEqual({ mine: null, who: null });
  });

  it('records a denial inside a named fragment at every path the fragment is used at', async () => {
    const query = `
      query Two { first: user(id: "u1") { ...Private } second: user(id: "u2") { name ...Private } }
      fragment Private on User { internalNote }`;
    const { response, denials, rewritten } = await run(query, signedIn());
    expect(denials.map((d) => d.path)).toEqual([['first', 'internalNote'], ['second', 'internalNote']]);
    expect(response.data).toEqual({ first: { internalNote: null }, second: { name: 'Bob', internalNote: null } });
    expect(codes(response)).toEqual([
      { path: ['first', 'internalNote'], code: 'FORBIDDEN' },
      { path: ['second', 'internalNote'], code: 'FORBIDDEN' },
    ]);
    expect(print(rewritten)).toContain('fragment Private on User {\n  _tesseraDenied_internalNote_User_internalNote: __typename\n}');
    expect((await run(query, signedIn('admin'))).response.data).toEqual({
      first: { internalNote: 'vip' },
      second: { name: 'Bob', internalNote: null },
    });
  });

  it('handles inline fragments, with and without a type condition', async () => {
    const { response } = await run('{ user(id: "u1") { ... on User { name internalNote } ... { note: internalNote } } }', signedIn());
    expect(response.data).toEqual({ user: { name: 'Ada', internalNote: null, note: null } });
    expect(codes(response).map((e) => e.path)).toEqual([
      ['user', 'internalNote'],
      ['user', 'note'],
    ]);
  });

  it('keeps a selection set valid when every field in it is denied', async () => {
    const { response, rewritten } = await run('{ user(id: "u1") { internalNote } }', signedIn());
    expect(validate(apiSchema, rewritten)).toEqual([]);
    expect(response.data).toEqual({ user: { internalNote: null } });
    const whole = await run('{ me { id } secret }', ANONYMOUS);
    expect(whole.response.data).toEqual({ me: null, secret: null });
    expect(codes(whole.response).map((e) => e.path)).toEqual([['me'], ['secret']]);
  });

  it('nulls a denied field in every element of a list, with one error per element', async () => {
    const { response } = await run('{ users { name internalNote } }', signedIn());
    expect(response.data).toEqual({ users: [{ name: 'Ada', internalNote: null }, { name: 'Bob', internalNote: null }] });
    expect(codes(response)).toEqual([
      { path: ['users', 0, 'internalNote'], code: 'FORBIDDEN' },
      { path: ['users', 1, 'internalNote'], code: 'FORBIDDEN' },
    ]);
  });

  it('propagates null from a non-null field to the nearest nullable ancestor', async () => {
    const strict = await run('{ strict { id code } publicInfo }', signedIn());
    expect(strict.response.data).toEqual({ strict: null, publicInfo: 'hello' });
    expect(codes(strict.response)).toEqual([{ path: ['strict', 'code'], code: 'FORBIDDEN' }]);

    // rating: Int! in [Review!]! in User.reviews: [Review!]! in user: User → user is null.
    const chain = await run('{ user(id: "u1") { name reviews { body rating } } publicInfo }', signedIn());
    expect(chain.response.data).toEqual({ user: null, publicInfo: 'hello' });
    expect(codes(chain.response)).toEqual([{ path: ['user', 'reviews', 0, 'rating'], code: 'FORBIDDEN' }]);

    // users: [User!]! at the root: nothing nullable above email, so data itself is null.
    const root = await run('{ users { email } publicInfo }', ANONYMOUS);
    expect(root.response.data).toBeNull();
    expect(codes(root.response)).toEqual([{ path: ['users', 0, 'email'], code: 'UNAUTHENTICATED' }]);
  });

  it('does not null or report a denied field that @include/@skip leaves out', async () => {
    const query = 'query($show: Boolean!) { user(id: "u1") { name internalNote @include(if: $show) } }';
    const hidden = await run(query, signedIn(), { show: false });
    expect(hidden.response).toEqual({ data: { user: { name: 'Ada' } } });
    const shown = await run(query, signedIn(), { show: true });
    expect(shown.response.data).toEqual({ user: { name: 'Ada', internalNote: null } });
  });

  it('removes variables only the denied fields used, and runs the rest of a mutation', async () => {
    const query = 'mutation Rename($name: String!) { rename(name: $name) { id name } ping }';
    const { response, rewritten } = await run(query, ANONYMOUS, { name: 'Eve' }, 'Rename');
    expect(print(rewritten)).not.toContain('$name');
    expect(response.data).toEqual({ rename: null, ping: true });
    expect(codes(response)).toEqual([{ path: ['rename'], code: 'UNAUTHENTICATED' }]);
  });

  it('picks the named operation and drops the others and their fragments', async () => {
    const query = `
      query A { me { ...Who } }
      query B { publicInfo user(id: "u2") { ...Who } }
      fragment Who on User { name }`;
    const a = await run(query, ANONYMOUS, undefined, 'A');
    expect(a.rewritten.definitions).toHaveLength(1);
    expect(a.response.data).toEqual({ me: null });
    const b = await run(query, ANONYMOUS, undefined, 'B');
    expect(b.rewritten).toBe(b.document);
  });

  it('nulls a denied field only on the objects its type condition matches', async () => {
    const { response } = await run('{ search { ... on User { k: internalNote } ... on Account { k: label } } }', signedIn());
    expect(response.data).toEqual({ search: [{ k: null }, { k: 'main' }, { k: null }] });
    expect(codes(response)).toEqual([
      { path: ['search', 0, 'k'], code: 'FORBIDDEN' },
      { path: ['search', 2, 'k'], code: 'FORBIDDEN' },
    ]);
  });

  it('returns the same document object when nothing is denied', () => {
    const document = parse('{ publicInfo user(id: "u1") { name reviews { body } } }');
    const out = authorizeOperation({ schema: apiSchema, document, requirements, caller: ANONYMOUS });
    expect(out.document).toBe(document);
    expect(out.denials).toEqual([]);
  });
});

describe('applyDenials on its own', () => {
  // Signed in without scopes: internalNote (admin) and strict.code (ops) are denied.
  const document = parse('{ users { internalNote email } strict { code } }');
  const denials = authorizeOperation({ schema: apiSchema, document, requirements, caller: signedIn() }).denials;
  const NOTE = '_tesseraDenied_internalNote_User_internalNote';
  const CODE = '_tesseraDenied_code_Strict_code';
  // A result as executing the rewritten document gives it, with a null element in the list.
  const result = (): FormattedExecutionResult => ({
    data: { users: [{ [NOTE]: 'User', email: 'a@x' }, null, { [NOTE]: 'User', email: 'b@x' }], strict: { [CODE]: 'Strict' } },
  });

  it('nulls denied fields through lists, skipping null parents', () => {
    const notes = denials.filter((d) => d.path.join('.') === 'users.internalNote');
    const given = result();
    const out = applyDenials(given, notes);
    expect(out.data).toEqual({
      users: [{ internalNote: null, email: 'a@x' }, null, { internalNote: null, email: 'b@x' }],
      strict: { [CODE]: 'Strict' },
    });
    expect(out.errors?.map((e) => e.path)).toEqual([['users', 0, 'internalNote'], ['users', 2, 'internalNote']]);
    expect(given).toEqual(result());
  });

  it('reads nullability from the denial’s types', () => {
    const code = denials.filter((d) => d.path.join('.') === 'strict.code');
    expect(code.map((d) => d.types)).toEqual([['Strict', 'String!']]);
    expect(applyDenials(result(), code).data).toEqual({ users: result().data?.users, strict: null });
    const nullable = code.map((d): Denial => ({ ...d, types: ['Strict', 'String'] }));
    expect(applyDenials(result(), nullable).data).toEqual({ users: result().data?.users, strict: { code: null } });
  });

  it('leaves a result without data alone', () => {
    const failed: FormattedExecutionResult = { errors: [{ message: 'boom' }] };
    expect(denials).not.toEqual([]);
    expect(applyDenials(failed, denials)).toBe(failed);
  });
});

describe('property: the rewritten document always validates', () => {
  const SCOPES = ['a', 'b', 'c', 'admin', 'ops', 'reviews:read'];
  const SELECTIONS = [
    'publicInfo',
    'secret',
    'me { id ...UserBits }',
    'who: user(id: $id) { ...UserBits reviews { id rating } }',
    'users { ...UserBits ... on User { name } }',
    'account { id balance }',
    'strict { code }',
    'search { __typename ... on Account { balance } ...UserBits }',
    'node(id: $id) { id ... on User { email } }',
  ];
  const FRAGMENT = 'fragment UserBits on User { name email internalNote @skip(if: $skip) }';

  function random(seed: number): () => number {
    let state = seed;
    return () => {
      state = (state + 0x6d2b79f5) | 0;
      let t = Math.imul(state ^ (state >>> 15), 1 | state);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  it('for random callers and random operations', async () => {
    const next = random(42);
    let denied = 0;
    let secretChecks = 0;
    for (let i = 0; i < 200; i += 1) {
      const caller: Caller = { authenticated: next() < 0.7, scopes: new Set(SCOPES.filter(() => next() < 0.5)) };
      const picked = SELECTIONS.filter(() => next() < 0.4);
      const body = picked.length > 0 ? picked : ['publicInfo'];
      const usesFragment = body.some((s) => s.includes('...UserBits'));
      // Only the variables the operation uses (an unused one makes it invalid).
      const variables = [
        ...(body.some((s) => s.includes('$id')) ? ['$id: ID!'] : []),
        ...(usesFragment ? ['$skip: Boolean!'] : []),
      ];
      const query = `query Q${variables.length ? `(${variables.join(', ')})` : ''} { ${body.join(' ')} } ${usesFragment ? FRAGMENT : ''}`;
      const document = parse(query);
      // Every generated operation is valid: the property is checked on all of them.
      expect(validate(apiSchema, document), query).toEqual([]);
      const out = authorizeOperation({ schema: apiSchema, document, operationName: 'Q', requirements, caller });
      expect(validate(apiSchema, out.document), `${query} for ${[...caller.scopes].join(',')}`).toEqual([]);
      const executed = await execute({ schema: apiSchema, document: out.document, rootValue, variableValues: { id: 'u1', skip: next() < 0.5 } });
      const response = applyDenials({ data: executed.data }, out.denials);
      expect(JSON.stringify(response.data ?? null)).not.toContain('_tesseraDenied');
      const secretDenied = out.denials.some((d) => d.path.join('.') === 'secret');
      if (out.denials.length > 0) denied += 1;
      if (secretDenied) secretChecks += 1;
      expect(secretDenied).toBe(picked.includes('secret') && !(caller.authenticated && (caller.scopes.has('c') || (caller.scopes.has('a') && caller.scopes.has('b')))));
      if (secretDenied) expect(JSON.stringify(response.data ?? null)).not.toContain('s3cret');
    }
    // The generator reaches both sides of the property: operations with denials and without,
    // and the secret denied (and so checked absent) many times.
    expect(denied).toBeGreaterThan(20);
    expect(200 - denied).toBeGreaterThan(20);
    expect(secretChecks).toBeGreaterThan(20);
  });
});

describe('through @apollo/gateway (in process, no HTTP)', () => {
  const subgraphCalls: string[] = [];
  let server: ApolloServer<{ caller: Caller }>;

  function subgraph(name: string, sdl: string, resolvers: SubgraphResolvers) {
    return { name, schema: buildSubgraphSchema({ typeDefs: parse(sdl), resolvers }) };
  }

  beforeAll(async () => {
    const accounts = subgraph('accounts', ACCOUNTS, {
      Query: {
        me: () => (subgraphCalls.push('me'), ADA),
        user: (_: unknown, { id }: { id: string }) => (subgraphCalls.push('user'), [ADA, BOB].find((u) => u.id === id)),
        publicInfo: () => (subgraphCalls.push('publicInfo'), 'hello'),
        secret: () => (subgraphCalls.push('secret'), 's3cret'),
      },
      User: {
        __resolveReference: ({ id }: { id: string }) => [ADA, BOB].find((u) => u.id === id),
        internalNote: (user: typeof ADA) => (subgraphCalls.push('internalNote'), user.internalNote),
      },
    });
    const reviews = subgraph('reviews', REVIEWS, {
      User: { reviews: (user: { id: string }) => (subgraphCalls.push('reviews'), user.id === 'u1' ? ADA.reviews : []) },
    });
    const services = new Map([accounts, reviews].map((s) => [s.name, s.schema]));
    const gateway = new ApolloGateway({
      supergraphSdl: acceptEdgeEnforcedFeatures(supergraphSdl),
      buildService: ({ name }) => new LocalGraphQLDataSource(services.get(name) as GraphQLSchema),
    });
    server = new ApolloServer<{ caller: Caller }>({ gateway: withEdgeAuthorization(gateway, requirements) });
    await server.start();
  });

  afterAll(async () => {
    await server.stop();
  });

  async function ask(query: string, caller: Caller): Promise<FormattedExecutionResult> {
    subgraphCalls.length = 0;
    const response = await server.executeOperation({ query }, { contextValue: { caller } });
    if (response.body.kind !== 'single') throw new Error('expected a single result');
    const { data, errors } = response.body.singleResult;
    return { data, ...(errors ? { errors: errors.map((e) => ({ message: e.message, path: e.path, extensions: e.extensions })) } : {}) };
  }

  it('never calls a subgraph for a denied field, and answers the rest', async () => {
    const query = '{ publicInfo secret user(id: "u1") { name internalNote reviews { body } } }';
    const anonymous = await ask(query, ANONYMOUS);
    expect(anonymous.data).toEqual({
      publicInfo: 'hello',
      secret: null,
      user: { name: 'Ada', internalNote: null, reviews: [{ body: 'good' }] },
    });
    expect(codes(anonymous)).toEqual([
      { path: ['secret'], code: 'UNAUTHENTICATED' },
      { path: ['user', 'internalNote'], code: 'UNAUTHENTICATED' },
    ]);
    expect(subgraphCalls).not.toContain('secret');
    expect(subgraphCalls).not.toContain('internalNote');
    expect(subgraphCalls).toContain('reviews');

    // Same query text, another caller: the cached plan of the rewritten document is not reused.
    const admin = await ask(query, signedIn('c', 'admin'));
    expect(admin.data).toEqual({
      publicInfo: 'hello',
      secret: 's3cret',
      user: { name: 'Ada', internalNote: 'vip', reviews: [{ body: 'good' }] },
    });
    expect(admin.errors).toBeUndefined();
    expect((await ask(query, ANONYMOUS)).data).toEqual(anonymous.data);
  });

  it('answers an operation whose every root field is denied without calling any subgraph', async () => {
    const response = await ask('{ me { id name } secret }', ANONYMOUS);
    expect(response.data).toEqual({ me: null, secret: null });
    expect(subgraphCalls).toEqual([]);
  });
});

/** What the gateway mode's executor wrapper does (the integrator's code may differ). */
function withEdgeAuthorization(gateway: ApolloGateway, auth: AuthRequirements): GatewayInterface {
  return {
    async load(options) {
      const { schema, executor } = await gateway.load(options);
      return {
        schema,
        executor: async (requestContext) => {
          const context = requestContext.context as { caller: Caller };
          const { document, denials } = authorizeOperation({
            schema,
            document: requestContext.document,
            operationName: requestContext.operationName,
            requirements: auth,
            caller: context.caller,
          });
          if (denials.length === 0) return executor(requestContext);
          // A plan of its own: the rewritten document's hash, not the original's.
          const queryHash = createHash('sha256').update(print(document)).digest('hex');
          const result = await executor({ ...requestContext, document, queryHash });
          const formatted: FormattedExecutionResult = {
            data: result.data,
            ...(result.errors ? { errors: result.errors.map((e) => e.toJSON()) } : {}),
          };
          const applied = applyDenials(formatted, denials);
          return { ...result, data: applied.data, errors: applied.errors?.map((e) => toGraphQLError(e)) };
        },
      };
    },
    onSchemaLoadOrUpdate: (callback) => gateway.onSchemaLoadOrUpdate(callback),
    stop: () => gateway.stop(),
  };
}

function toGraphQLError(error: GraphQLFormattedError): GraphQLError {
  return new GraphQLError(error.message, { path: error.path, extensions: error.extensions });
}
