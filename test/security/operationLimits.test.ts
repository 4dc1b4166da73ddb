import {
  buildSchema,
  getIntrospectionQuery,
  type GraphQLError,
  type IntrospectionOptions,
  parse,
  specifiedRules,
  validate,
  type ValidationRule,
} from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  documentSizeError,
  MAX_INTROSPECTION_DEPTH,
  maxAliasesRule,
  maxDepthRule,
  maxDirectivesRule,
  maxRootFieldsRule,
} from '../../src/graphql/operationLimits.js';
import { loadTypeDefs } from '../../src/graphql/schema.js';
import {
  createTestServer,
  type GraphQLAnswer,
  type TestServer,
  uniqueEmail,
} from '../helpers/testServer.js';

const PASSWORD = 'correct horse battery';

const LIMITS = {
  MAX_DEPTH: '2',
  MAX_ALIASES: '3',
  MAX_ROOT_FIELDS: '3',
  MAX_DIRECTIVES: '3',
  MAX_TOKENS: '100',
  MAX_DOCUMENT_BYTES: '2000',
};

type Caught = 'GRAPHQL_VALIDATION_FAILED' | 'GRAPHQL_PARSE_FAILED';

/**
 * Refused before anything ran: 400, no data, every error with Apollo's code for where it was
 * caught (validation unless told otherwise), one naming the limit.
 */
function expectRefused(answer: GraphQLAnswer, message: string | RegExp, code: Caught | Caught[] = 'GRAPHQL_VALIDATION_FAILED'): void {
  expect(answer.status).toBe(400);
  expect(answer.data).toBeNull();
  expect(answer.errors.length).toBeGreaterThan(0);
  for (const error of answer.errors) expect([code].flat()).toContain(error.extensions.code);
  expect(answer.errors.map((e) => e.message)).toContainEqual(expect.stringMatching(message));
}

/** Passed validation and ran. */
function expectAccepted(answer: GraphQLAnswer): void {
  expect(answer.errors).toEqual([]);
  expect(answer.status).toBe(200);
  expect(answer.data).not.toBeNull();
}

/** Passed validation: whatever the resolvers then said, no limit refused it. */
function expectValidated(answer: GraphQLAnswer): void {
  expect(answer.status).toBe(200);
  for (const error of answer.errors) expect(['GRAPHQL_VALIDATION_FAILED', 'GRAPHQL_PARSE_FAILED']).not.toContain(error.extensions.code);
}

/** `ofType { ofType { … name … } }`, `levels` deep (with `name` at the bottom, one more). */
function ofTypes(levels: number): string {
  return `${'ofType { '.repeat(levels)}name${' }'.repeat(levels)}`;
}

/** A valid query of exactly `tokens` lexical tokens (commas do not count). */
function queryOfTokens(tokens: number): string {
  return `{ __schema { queryType { ${Array<string>(tokens - 8).fill('name').join(', ')} } } }`;
}

describe('operation limits over HTTP (configured low)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await createTestServer({ store: 'memory', env: LIMITS });
  });
  afterAll(() => server.close());

  const signupWith = (selection: string) =>
    `mutation($email: String!, $password: String!) { ${selection} }`;
  const signupField = (alias = '') =>
    `${alias}signup(email: $email, password: $password) { accessToken }`;

  async function expectNoAccount(email: string): Promise<void> {
    const shallowLogin = 'mutation($email: String!, $password: String!) { login(email: $email, password: $password) { accessToken } }';
    const login = await server.graphql(shallowLogin, { email, password: PASSWORD });
    expect(login.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'INVALID_CREDENTIALS' });
  }

  describe('depth', () => {
    it('an operation at the limit runs; one level more is refused before any resolver', async () => {
      const email = uniqueEmail();
      expectValidated(await server.graphql(signupWith(`signup(email: $email, password: $password) { accessToken }`), { email: uniqueEmail(), password: PASSWORD }));
      const over = signupWith('signup(email: $email, password: $password) { user { id } }');
      expectRefused(await server.graphql(over, { email, password: PASSWORD }), /^Operation depth 3 exceeds the limit of 2\.$/);
      await expectNoAccount(email);
    });

    it('is measured through fragment spreads and inline fragments', async () => {
      const at = '{ ...F } fragment F on Query { ... on Query { me { id } } }';
      expectValidated(await server.graphql(at));
      const email = uniqueEmail();
      const over =
        'mutation($email: String!, $password: String!) { ...F } fragment F on Mutation { signup(email: $email, password: $password) { ...G } } fragment G on AuthPayload { session { id } }';
      expectRefused(await server.graphql(over, { email, password: PASSWORD }), 'Operation depth 3 exceeds the limit of 2.');
      await expectNoAccount(email);
    });

    it('a fragment cycle is a validation error, not a crash', async () => {
      const cycle = '{ me { ...A } } fragment A on User { ...B } fragment B on User { ...A }';
      expectRefused(await server.graphql(cycle), /Cannot spread fragment "A" within itself/);
      expectAccepted(await server.graphql('{ __typename }'));
    });

    it('introspection is held to its own bound, not to MAX_DEPTH', async () => {
      expectAccepted(await server.graphql('{ __schema { types { fields { type { ofType { ofType { name } } } } } } }'));
      expectRefused(await server.graphql(`{ __schema { types { fields { type { ${ofTypes(18)} } } } } }`), 'Introspection depth 23 exceeds the limit of 20.');
    });
  });

  describe('aliases', () => {
    it('at the limit a signup runs; one alias more and nothing runs: no account is created', async () => {
      const aliases = ['a: accessToken', 'b: tokenType', 'c: expiresIn', 'd: refreshToken'];
      const select = (n: number) => `signup(email: $email, password: $password) { ${aliases.slice(0, n).join(' ')} }`;

      const allowed = uniqueEmail();
      const at = await server.graphql(signupWith(select(3)), { email: allowed, password: PASSWORD });
      expectAccepted(at);
      expect(Object.keys(at.data!.signup as object)).toEqual(['a', 'b', 'c']);

      const refused = uniqueEmail();
      const over = await server.graphql(signupWith(select(4)), { email: refused, password: PASSWORD });
      expectRefused(over, /^Alias count 4 exceeds the limit of 3\.$/);
      await expectNoAccount(refused);
    });
  });

  describe('root fields', () => {
    it('at the limit a signup runs; one root field more and nothing runs', async () => {
      const allowed = uniqueEmail();
      const at = await server.graphql(signupWith(signupField().repeat(3)), { email: allowed, password: PASSWORD });
      expectAccepted(at);

      const refused = uniqueEmail();
      const over = await server.graphql(signupWith(signupField().repeat(4)), { email: refused, password: PASSWORD });
      expectRefused(over, /^Root field count 4 exceeds the limit of 3\.$/);
      await expectNoAccount(refused);
    });

    it('counts the fields of a fragment at each spread', async () => {
      const fragment = 'fragment F on Query { __typename __schema { queryType { name } } }';
      expectAccepted(await server.graphql(`{ ...F __typename } ${fragment}`));
      expectRefused(await server.graphql(`{ ...F ... on Query { ...F } } ${fragment}`), 'Root field count 4 exceeds the limit of 3.');
    });
  });

  describe('directives', () => {
    const query = (n: number) =>
      `{ __schema { queryType { ${Array<string>(n).fill('name @include(if: true)').join(' ')} } } }`;

    it('at the limit a query runs; one directive more is refused', async () => {
      expectAccepted(await server.graphql(query(3)));
      expectRefused(await server.graphql(query(4)), /^Directive count 4 exceeds the limit of 3\.$/);
    });

    it('directives in a mutation over the limit: nothing runs', async () => {
      const email = uniqueEmail();
      const over = `mutation($email: String!, $password: String!) {
        signup(email: $email, password: $password) @include(if: true) {
          accessToken @include(if: true) tokenType @skip(if: false) expiresIn @include(if: true)
        }
      }`;
      expectRefused(await server.graphql(over, { email, password: PASSWORD }), 'Directive count 4 exceeds the limit of 3.');
      await expectNoAccount(email);
    });
  });

  describe('tokens', () => {
    it('the helper builds documents of exactly that many tokens', () => {
      expect(() => parse(queryOfTokens(100), { maxLexicalTokens: 100 })).not.toThrow();
      expect(() => parse(queryOfTokens(100), { maxLexicalTokens: 99 })).toThrow(/tokens/);
    });

    it('a document at MAX_TOKENS runs; one token more is refused while parsing', async () => {
      expectAccepted(await server.graphql(queryOfTokens(100)));
      const over = await server.graphql(queryOfTokens(101));
      expectRefused(over, /Document contains more tha[nt] 100 tokens\. Parsing aborted\./, 'GRAPHQL_PARSE_FAILED');
      expect(over.errors).toHaveLength(1);
    });
  });

  describe('document size', () => {
    const padded = (bytes: number) => `{ __typename }${' '.repeat(bytes - 14)}`;
    const TOO_LONG = 'Syntax Error: Source contains more than 2000 UTF-16 code units. Parsing aborted.';

    it('a document of MAX_DOCUMENT_BYTES runs; one byte more is refused before parsing', async () => {
      expect(Buffer.byteLength(padded(2000))).toBe(2000);
      expectAccepted(await server.graphql(padded(2000)));
      expectRefused(await server.graphql(padded(2001)), TOO_LONG, 'GRAPHQL_PARSE_FAILED');
    });

    it('is checked before lexing: an oversized document over MAX_TOKENS, unparsable, gets only that error', async () => {
      const answer = await server.graphql(`{ ${'name '.repeat(500)}`);
      expectRefused(answer, TOO_LONG, 'GRAPHQL_PARSE_FAILED');
      expect(answer.errors).toHaveLength(1);
    });

    it('counts UTF-8 bytes, not characters', async () => {
      const query = `{ __typename } # ${'é'.repeat(1000)}`;
      expect(query.length).toBeLessThan(2000);
      expectRefused(await server.graphql(query), /^Document size 2017 bytes exceeds the limit of 2000 bytes\.$/);
    });

    it('an oversized mutation runs nothing, whichever check refuses it', async () => {
      for (const padding of [' '.repeat(2000), `# ${'é'.repeat(990)}`]) {
        const email = uniqueEmail();
        const query = signupWith(signupField()) + padding;
        expect(Buffer.byteLength(query)).toBeGreaterThan(2000);
        expectRefused(await server.graphql(query, { email, password: PASSWORD }), /Source contains more|Document size/, [
          'GRAPHQL_PARSE_FAILED',
          'GRAPHQL_VALIDATION_FAILED',
        ]);
        await expectNoAccount(email);
      }
    });
  });
});

describe('operation limits over HTTP (defaults)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await createTestServer({ store: 'memory' });
  });
  afterAll(() => server.close());

  it("let Apollo Sandbox and GraphiQL load the schema (graphql-js's introspection query, with each of its options)", async () => {
    const options: IntrospectionOptions[] = [
      {},
      { descriptions: true, inputValueDeprecation: true },
      // GraphiQL's
      { schemaDescription: true, inputValueDeprecation: true, oneOf: true },
      {
        descriptions: true,
        specifiedByUrl: true,
        directiveIsRepeatable: true,
        schemaDescription: true,
        inputValueDeprecation: true,
        experimentalDirectiveDeprecation: true,
        oneOf: true,
      },
      { typeDepth: 3 },
    ];
    for (const option of options) {
      const answer = await server.graphql(getIntrospectionQuery(option));
      expectAccepted(answer);
      expect(JSON.stringify(answer.data), JSON.stringify(option)).toContain('"AuthPayload"');
    }
  });

  it('refuse introspection nested at will, written out or through fragments, before it runs', async () => {
    const deep = await server.graphql(`{ __schema { types { fields { type { ${ofTypes(40)} } } } } }`);
    expectRefused(deep, /^Introspection depth 45 exceeds the limit of 20\.$/);
    expect(deep.errors).toHaveLength(1);
    const fragments = Array.from({ length: 20 }, (_, i) => `fragment T${i} on __Type { name ofType { ...T${i + 1} } }`);
    const spread = `{ __type(name: "AuthPayload") { ...T0 } } ${fragments.join(' ')} fragment T20 on __Type { name }`;
    expectRefused(await server.graphql(spread), 'Introspection depth 22 exceeds the limit of 20.');
    // The deepest that passes: 20 levels, counting __schema.
    expectAccepted(await server.graphql(`{ __schema { types { fields { type { ${ofTypes(15)} } } } } }`));
  });

  it('are on: an operation over the default limits is refused', async () => {
    const aliases = Array.from({ length: 16 }, (_, i) => `a${i}: __typename`).join(' ');
    expectRefused(await server.graphql(`{ ${aliases} }`), 'Alias count 16 exceeds the limit of 15.');
  });

  it('a batched request (a JSON array) is refused', async () => {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ query: '{ __typename }' }, { query: '{ __typename }' }]),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { data?: unknown; errors?: { extensions?: { code?: string } }[] };
    expect(body.data).toBeUndefined();
    // Apollo refuses it, with its own code.
    expect(body.errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
  });
});

describe('operation limit rules (graphql validate)', () => {
  const schema = buildSchema(loadTypeDefs());
  const messages = (doc: string, rules: ValidationRule[]) =>
    validate(schema, parse(doc), rules).map((e: GraphQLError) => e.message);

  it('root fields: a fragment counts once per spread, through inline fragments', () => {
    const doc = '{ ...F ... on Query { ...F ... { sessions { id } } } } fragment F on Query { __typename me { id } }';
    expect(messages(doc, [maxRootFieldsRule(5)])).toEqual([]);
    expect(messages(doc, [maxRootFieldsRule(4)])).toEqual(['Root field count 5 exceeds the limit of 4.']);
  });

  it('root fields: each operation is counted on its own', () => {
    const doc = 'query A { me { id } sessions { id } } query B { __typename }';
    expect(messages(doc, [maxRootFieldsRule(2)])).toEqual([]);
    expect(messages(doc, [maxRootFieldsRule(1)])).toEqual(['Root field count 2 exceeds the limit of 1.']);
  });

  it('depth: inline fragments add no level; the deepest branch counts', () => {
    const doc = '{ me { ... on User { id } } sessions { ... { id } } __typename }';
    expect(messages(doc, [maxDepthRule(2)])).toEqual([]);
    expect(messages(doc, [maxDepthRule(1)])).toEqual(['Operation depth 2 exceeds the limit of 1.']);
  });

  it('depth: 12 levels of data pass a limit of 12, 13 do not', () => {
    const deep = buildSchema('type Query { n: N } type N { n: N x: Int }');
    const nested = (levels: number) => `{ ${'n { '.repeat(levels - 1)}x${' }'.repeat(levels - 1)} }`;
    const check = (doc: string) => validate(deep, parse(doc), [maxDepthRule(12)]).map((e) => e.message);
    expect(check(nested(12))).toEqual([]);
    expect(check(nested(13))).toEqual(['Operation depth 13 exceeds the limit of 12.']);
  });

  it('depth: introspection is held to MAX_INTROSPECTION_DEPTH, or to a larger data limit', () => {
    const nested = (levels: number) => `{ __schema { types { fields { type { ${ofTypes(levels)} } } } } }`;
    expect(MAX_INTROSPECTION_DEPTH).toBe(20);
    expect(messages(nested(15), [maxDepthRule(12)])).toEqual([]);
    expect(messages(nested(16), [maxDepthRule(12)])).toEqual(['Introspection depth 21 exceeds the limit of 20.']);
    expect(messages(nested(16), [maxDepthRule(21)])).toEqual([]);
    // Data under the data limit, introspection under its own: both pass.
    expect(messages(`{ me { id } ${nested(15).slice(1)}`, [maxDepthRule(2)])).toEqual([]);
  });

  it('depth: a fragment cycle ends with the spec rule error, not a stack overflow', () => {
    const doc = '{ __schema { types { ...A } } } fragment A on __Type { ofType { ...A } }';
    expect(messages(doc, [...specifiedRules, maxDepthRule(12)])).toEqual([
      'Cannot spread fragment "A" within itself.',
    ]);
  });

  it('fragments spread many times are walked once (no exponential blow-up)', () => {
    const fragments = Array.from({ length: 40 }, (_, i) => `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`);
    const doc = `{ ...F0 } ${fragments.join(' ')} fragment F40 on Query { __typename }`;
    const started = performance.now();
    expect(messages(doc, [maxRootFieldsRule(15), maxDepthRule(12)])).toEqual([
      `Root field count ${2 ** 40} exceeds the limit of 15.`,
    ]);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('aliases and directives are counted as written in the whole document', () => {
    const doc = `{ a: me @skip(if: false) { ...U } b: me { ...U @include(if: true) } }
      fragment U on User { c: id email @include(if: true) }`;
    expect(messages(doc, [maxAliasesRule(3), maxDirectivesRule(3)])).toEqual([]);
    expect(messages(doc, [maxAliasesRule(2), maxDirectivesRule(2)])).toEqual([
      'Alias count 3 exceeds the limit of 2.',
      'Directive count 3 exceeds the limit of 2.',
    ]);
  });

  it('document size is measured in UTF-8 bytes', () => {
    expect(documentSizeError('a'.repeat(10), 10)).toBeNull();
    expect(documentSizeError('é'.repeat(5), 10)).toBeNull();
    const error = documentSizeError('é'.repeat(6), 10);
    expect(error?.message).toBe('Document size 12 bytes exceeds the limit of 10 bytes.');
  });
});
