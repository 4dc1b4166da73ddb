import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestServer, type TestServer } from '../helpers/testServer.js';

describe('HTTP endpoints (development)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await createTestServer({ store: 'memory' });
  });
  afterAll(() => server.close());

  it('/healthz answers 200 while the process runs', async () => {
    const response = await fetch(`${server.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('/readyz answers 200 when the store answers', async () => {
    const response = await fetch(`${server.url}/readyz`);
    expect(response.status).toBe(200);
  });

  it('a browser GET of /graphql shows Apollo Sandbox, set up to send cookies', async () => {
    const response = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain('embeddable-sandbox');
    expect(html).toMatch(/"includeCookies":\s*true/);
  });

  it('introspection works outside production', async () => {
    const answer = await server.graphql('{ __schema { queryType { name } } }');
    expect(answer.data).toEqual({ __schema: { queryType: { name: 'Query' } } });
  });

  it('unknown paths are 404', async () => {
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
  });

  it('malformed JSON is a clear BAD_USER_INPUT error', async () => {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query":',
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { errors: { extensions: { code: string } }[] };
    expect(body.errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
  });

  it('a body over the limit is refused before it is read whole', async () => {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'mutation($p: String!) { login(email: "a@b.co", password: $p) { accessToken } }', variables: { p: 'x'.repeat(1_000_000) } }),
    });
    expect(response.status).toBe(413);
    const body = (await response.json()) as { errors: { extensions: { code: string } }[] };
    expect(body.errors[0]?.extensions.code).toBe("BAD_USER_INPUT");
  });

  it("what Apollo detects keeps Apollo's code: a syntax error, a validation error, an unknown persisted query", async () => {
    const syntax = await server.graphql('{ me { id }');
    expect(syntax.status).toBe(400);
    expect(syntax.errors[0]?.extensions.code).toBe('GRAPHQL_PARSE_FAILED');
    const invalid = await server.graphql('{ nope }');
    expect(invalid.status).toBe(400);
    expect(invalid.errors[0]?.extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    const persisted = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ extensions: { persistedQuery: { version: 1, sha256Hash: 'a'.repeat(64) } } }),
    });
    const body = (await persisted.json()) as { errors: { extensions: { code: string } }[] };
    expect(body.errors[0]?.extensions.code).toBe('PERSISTED_QUERY_NOT_FOUND');
    const noQuery = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ variables: {} }),
    });
    expect(noQuery.status).toBe(400);
    expect(((await noQuery.json()) as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions.code).toBe('BAD_REQUEST');
  });

  it('CSRF prevention refuses a simple cross-site request', async () => {
    const response = await fetch(`${server.url}/graphql?query=${encodeURIComponent('{ me { id } }')}`, {
      headers: { accept: 'application/json' },
    });
    expect(response.status).toBe(400);
    const form = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ query: 'mutation { revokeAllSessions }' }),
    });
    expect(form.status).toBe(400);
  });
});
