import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { originPolicy } from '../../src/http/cors.js';
import { createTestServer, SIGNUP, type TestServer, uniqueEmail, TEST_PASSWORD } from '../helpers/testServer.js';

const APP = 'https://app.example.com';
const OTHER_APP = 'http://localhost:5173';
const GRANT_HEADERS = [
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'access-control-allow-methods',
  'access-control-allow-headers',
  'access-control-max-age',
];

function corsHeaders(headers: Headers): Record<string, string> {
  const found: Record<string, string> = {};
  headers.forEach((value, name) => {
    if (name.startsWith('access-control-')) found[name] = value;
  });
  return found;
}

function varyOf(headers: Headers): string[] {
  return (headers.get('vary') ?? '').split(',').map((part) => part.trim().toLowerCase());
}

describe('CORS on /graphql', () => {
  let server: TestServer;
  let endpoint: string;
  beforeAll(async () => {
    server = await createTestServer({ store: 'memory', env: { CORS_ORIGINS: `${APP}, ${OTHER_APP}` } });
    endpoint = `${server.url}/graphql`;
  });
  afterAll(() => server.close());

  const preflight = (origin: string, method: string, headers?: string) =>
    fetch(endpoint, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': method,
        ...(headers === undefined ? {} : { 'access-control-request-headers': headers }),
      },
    });

  it('a preflight from a listed origin is answered 204 with credentials, GET/POST and the headers Apollo clients send', async () => {
    const response = await preflight(APP, 'POST', 'content-type,authorization,apollo-require-preflight,x-apollo-operation-name');
    expect(response.status).toBe(204);
    expect(await response.text()).toBe('');
    expect(corsHeaders(response.headers)).toEqual({
      'access-control-allow-origin': APP,
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'GET, POST',
      'access-control-allow-headers':
        'content-type, authorization, apollo-require-preflight, x-apollo-operation-name, apollographql-client-name, apollographql-client-version, x-request-id',
      'access-control-max-age': '600',
    });
    expect(varyOf(response.headers)).toContain('origin');
    // The second listed origin gets its own origin back, never the first one.
    const other = await preflight(OTHER_APP, 'GET', 'Content-Type');
    expect(other.status).toBe(204);
    expect(other.headers.get('access-control-allow-origin')).toBe(OTHER_APP);
  });

  it('a preflight asking for another method or header gets no grant', async () => {
    for (const response of [
      await preflight(APP, 'PUT', 'content-type'),
      await preflight(APP, 'DELETE'),
      await preflight(APP, 'POST', 'content-type, x-custom'),
      await preflight(APP, 'POST', 'cookie'),
    ]) {
      expect(response.status).toBe(204);
      for (const name of GRANT_HEADERS) expect(response.headers.get(name)).toBeNull();
      expect(varyOf(response.headers)).toContain('origin');
    }
  });

  it('other origins, a near miss of a listed one and Origin: null get no CORS header at all', async () => {
    for (const origin of ['https://evil.example.com', 'http://app.example.com', 'https://app.example.com:8443', 'https://app.example.com.evil.net', 'null']) {
      const pre = await preflight(origin, 'POST', 'content-type');
      expect(corsHeaders(pre.headers)).toEqual({});
      const post = await fetch(endpoint, {
        method: 'POST',
        headers: { origin, 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ me { id } }' }),
      });
      expect(post.status).toBe(200);
      expect(corsHeaders(post.headers)).toEqual({});
      expect(varyOf(post.headers)).toContain('origin');
    }
  });

  it('an answer to a listed origin carries the origin and credentials; Vary: Origin is on every answer of the route', async () => {
    const listed = await fetch(endpoint, {
      method: 'POST',
      headers: { origin: APP, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ me { id } }' }),
    });
    expect(listed.status).toBe(200);
    expect(listed.headers.get('access-control-allow-origin')).toBe(APP);
    expect(listed.headers.get('access-control-allow-credentials')).toBe('true');
    // The page may read the request id, to quote it in a bug report.
    expect(listed.headers.get('access-control-expose-headers')).toBe('x-request-id');
    expect(listed.headers.get('x-request-id')).toBeTruthy();
    expect(varyOf(listed.headers)).toContain('origin');
    const none = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ me { id } }' }),
    });
    expect(corsHeaders(none.headers)).toEqual({});
    expect(varyOf(none.headers)).toContain('origin');
    // Errors the HTTP layer answers itself (malformed JSON) carry them too, so the page can read them.
    const malformed = await fetch(endpoint, { method: 'POST', headers: { origin: APP, 'content-type': 'application/json' }, body: '{' });
    expect(malformed.status).toBe(400);
    expect(malformed.headers.get('access-control-allow-origin')).toBe(APP);
    expect(varyOf(malformed.headers)).toContain('origin');
  });

  it("CSRF prevention stays on for a listed origin: a simple cross-origin POST is refused by Apollo, and nothing runs", async () => {
    const email = uniqueEmail();
    const form = await fetch(endpoint, {
      method: 'POST',
      headers: { origin: APP, 'content-type': 'text/plain' },
      body: JSON.stringify({ query: SIGNUP, variables: { email, password: TEST_PASSWORD } }),
    });
    expect(form.status).toBe(400);
    const refused = (await form.json()) as { errors: { message: string; extensions: { code: string } }[] };
    expect(refused.errors[0]?.message).toMatch(/Cross-Site Request Forgery/);
    // Apollo's own code for what Apollo detects (contract section 11).
    expect(refused.errors[0]?.extensions.code).toBe('BAD_REQUEST');
    // The account was not created: the same signup now succeeds.
    const signup = await server.graphql(SIGNUP, { email, password: TEST_PASSWORD });
    expect(signup.errors).toEqual([]);
    expect(signup.data!.signup.user.email).toBe(email);
  });

  it('other routes are untouched', async () => {
    const health = await fetch(`${server.url}/healthz`, { headers: { origin: APP } });
    expect(corsHeaders(health.headers)).toEqual({});
  });
});

describe('CORS_ORIGINS unset', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await createTestServer({ store: 'memory' });
  });
  afterAll(() => server.close());

  it('no origin gets a grant, and the preflight is still answered (204, no grant) rather than by GraphQL', async () => {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'OPTIONS',
      headers: { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(response.status).toBe(204);
    expect(corsHeaders(response.headers)).toEqual({});
  });
});

describe('CORS_ORIGINS at start', () => {
  const load = (value: string) => loadConfig({ CORS_ORIGINS: value });
  const refusal = (value: string): string => {
    try {
      load(value);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as Error).message;
    }
    throw new Error(`CORS_ORIGINS=${value} was accepted`);
  };

  it('exact origins are kept, normalized as browsers send them (lower case, no default port), without duplicates', () => {
    expect(load('https://App.Example.com, http://localhost:5173,https://app.example.com:443').corsOrigins).toEqual([
      'https://app.example.com',
      'http://localhost:5173',
    ]);
    expect(loadConfig({}).corsOrigins).toEqual([]);
  });

  it('"*", "null", a path, a trailing slash, another scheme or a wildcard host is refused with one line naming the variable', () => {
    for (const [value, message] of [
      ['*', /^CORS_ORIGINS: "\*" is not allowed/],
      ['https://app.example.com,*', /^CORS_ORIGINS: "\*" is not allowed/],
      ['null', /^CORS_ORIGINS: "null" is not allowed/],
      ['https://app.example.com/', /^CORS_ORIGINS: "https:\/\/app.example.com\/" is not a bare origin: write https:\/\/app.example.com/],
      ['https://app.example.com/app', /not a bare origin/],
      ['https://app.example.com?x=1', /not a bare origin/],
      ['https://user:pw@app.example.com', /not a bare origin/],
      ['ftp://app.example.com', /not an http\(s\) origin/],
      ['app.example.com', /not an http\(s\) origin/],
      ['https://*.example.com', /not an http\(s\) origin/],
    ] as const) {
      const text = refusal(value);
      expect(text).toMatch(message);
      expect(text).not.toContain('\n');
    }
  });
});

describe('the Origin rule of the WebSocket upgrade (isAllowedOrigin)', () => {
  const policy = originPolicy({ origins: [APP], issuer: 'https://auth.example.com/tenant' });

  it("allows no Origin (not a browser), the gateway's own origin (AUTH_ISSUER's) and the listed ones; never null", () => {
    expect(policy.isAllowedOrigin(undefined)).toBe(true);
    expect(policy.isAllowedOrigin('https://auth.example.com')).toBe(true);
    expect(policy.isAllowedOrigin(APP)).toBe(true);
    expect(policy.isAllowedOrigin('null')).toBe(false);
    expect(policy.isAllowedOrigin('https://evil.example.com')).toBe(false);
    expect(policy.isAllowedOrigin('http://auth.example.com')).toBe(false);
    // CORS itself grants only the listed ones (the own origin needs none).
    expect(policy.isListedOrigin('https://auth.example.com')).toBe(false);
    expect(policy.isListedOrigin(undefined)).toBe(false);
  });
});
