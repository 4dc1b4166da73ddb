import type { Frame, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  launchBrowser,
  recordRequests,
  saveScreenshot,
  selfSignedCertificate,
  serveStatic,
  type StaticServer,
  type TestBrowser,
  tlsProxy,
} from '../helpers/browser.js';
import { AUTH_FIELDS, createTestServer, LOGIN, SIGNUP, TEST_PASSWORD, type TestServer, uniqueEmail } from '../helpers/testServer.js';

/*
 * Pages on other origins calling the gateway from real Chromium, as a single-page app does:
 * fetch with credentials, JSON bodies (so every call is preflighted), the access token in the
 * Authorization header, and in cookie mode the refresh token in the gateway's HttpOnly cookie.
 */

declare const document: { cookie: string; body: { innerHTML: string } };
declare const location: { origin: string };

const ME = '{ me { id email } }';
const REFRESH_FROM_COOKIE = `mutation { refreshToken { ${AUTH_FIELDS} } }`;
const PAGE = '<!doctype html><html><head><title>app</title><link rel="icon" href="data:,"><style>pre { white-space: pre-wrap; word-break: break-all; }</style></head><body><h1>A page on another origin</h1><pre id="out"></pre></body></html>';

type Call = { status: number; body: { data?: any; errors?: { extensions: { code: string; reason?: string } }[] } } | { failed: string };

/** One GraphQL call made by the page itself (fetch, credentials included), shown on the page for the screenshots. */
function call(target: Page | Frame, url: string, query: string, variables: Record<string, unknown> = {}, token?: string): Promise<Call> {
  return target.evaluate(
    async ({ url, query, variables, token }) => {
      let result: Call;
      try {
        const response = await fetch(url, {
          method: 'POST',
          credentials: 'include',
          headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
          body: JSON.stringify({ query, variables }),
        });
        result = { status: response.status, body: (await response.json()) as Extract<Call, { status: number }>['body'] };
      } catch (error) {
        result = { failed: String(error) };
      }
      const shown = `${location.origin} → ${url}\n${JSON.stringify(result, null, 1).slice(0, 400)}`;
      document.body.innerHTML += `<pre>${shown.replace(/</g, '&lt;')}</pre>`;
      return result;
    },
    { url, query, variables, token },
  );
}

function ok(result: Call): NonNullable<Extract<Call, { status: number }>['body']['data']> {
  expect(result).not.toHaveProperty('failed');
  const answer = result as Extract<Call, { status: number }>;
  expect(answer.body.errors).toBeUndefined();
  return answer.body.data;
}

/** The POSTs to /graphql the gateway answered (its request log): what reached GraphQL at all. */
function graphqlPosts(server: TestServer): number {
  return server.logs
    .flatMap((chunk) => chunk.split('\n'))
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg?: string; method?: string; path?: string })
    .filter((line) => line.msg === 'request done' && line.method === 'POST' && line.path === '/graphql').length;
}

describe('a page on another origin (refresh token in the body)', () => {
  let listedApp: StaticServer;
  let otherApp: StaticServer;
  let server: TestServer;
  let browser: TestBrowser;
  let endpoint: string;
  beforeAll(async () => {
    const files = {
      '/index.html': PAGE,
      // A sandboxed frame (no allow-same-origin) has an opaque origin: it sends Origin: null.
      '/sandboxed.html': `${PAGE.replace('</body>', '<iframe sandbox="allow-scripts" src="/inner.html"></iframe></body>')}`,
      '/inner.html': PAGE,
    };
    [listedApp, otherApp, browser] = await Promise.all([serveStatic({ files }), serveStatic({ files }), launchBrowser()]);
    server = await createTestServer({ store: 'redis', env: { CORS_ORIGINS: listedApp.url } });
    endpoint = `${server.url}/graphql`;
  });
  afterAll(async () => {
    await browser?.close();
    await Promise.all([server?.close(), listedApp?.close(), otherApp?.close()]);
  });

  it('a listed origin signs up, logs in and reads me with fetch and credentials', async () => {
    const page = await browser.newPage();
    await page.goto(listedApp.url);
    const email = uniqueEmail();
    const signup = ok(await call(page, endpoint, SIGNUP, { email, password: TEST_PASSWORD })).signup;
    expect(signup.user.email).toBe(email);
    const login = ok(await call(page, endpoint, LOGIN, { email, password: TEST_PASSWORD })).login;
    expect(login.session.current).toBe(true);
    expect(ok(await call(page, endpoint, ME, {}, login.accessToken)).me).toEqual({ id: signup.user.id, email });
    await saveScreenshot(page, 'cors-listed-origin-signup-login-me');
    await page.context().close();
  }, 60_000);

  it('a page on an origin not listed cannot call the gateway: the fetch fails and nothing reaches GraphQL', async () => {
    const page = await browser.newPage();
    const seen = recordRequests(page);
    await page.goto(otherApp.url);
    const email = uniqueEmail();
    const before = graphqlPosts(server);
    const refused = await call(page, endpoint, SIGNUP, { email, password: TEST_PASSWORD });
    expect(refused).toEqual({ failed: 'TypeError: Failed to fetch' });
    await saveScreenshot(page, 'cors-unlisted-origin-refused');
    // The browser asked (a preflight) and, given no grant, never sent the POST.
    expect(seen.urls()).toContain(endpoint);
    expect(graphqlPosts(server)).toBe(before);
    // No account was created: the same signup from a server succeeds.
    const signup = await server.graphql(SIGNUP, { email, password: TEST_PASSWORD });
    expect(signup.errors).toEqual([]);
    await page.context().close();
  }, 60_000);

  it('a sandboxed frame inside the listed app (Origin: null) cannot call the gateway', async () => {
    const page = await browser.newPage();
    await page.goto(`${listedApp.url}/sandboxed.html`);
    await expect.poll(() => page.frames().length).toBe(2);
    const frame = page.frames().find((candidate) => candidate !== page.mainFrame())!;
    await frame.waitForLoadState();
    const before = graphqlPosts(server);
    expect(await call(frame, endpoint, ME)).toEqual({ failed: 'TypeError: Failed to fetch' });
    expect(graphqlPosts(server)).toBe(before);
    await page.context().close();
  }, 60_000);
});

describe('cookie mode, app and gateway on this machine (plain HTTP, 127.0.0.1, two ports)', () => {
  let app: StaticServer;
  let otherApp: StaticServer;
  let server: TestServer;
  let browser: TestBrowser;
  let endpoint: string;
  beforeAll(async () => {
    [app, otherApp, browser] = await Promise.all([serveStatic({ files: { '/index.html': PAGE } }), serveStatic({ files: { '/index.html': PAGE } }), launchBrowser()]);
    server = await createTestServer({ store: 'redis', env: { CORS_ORIGINS: app.url, REFRESH_TOKEN_TRANSPORT: 'cookie' } });
    endpoint = `${server.url}/graphql`;
  });
  afterAll(async () => {
    await browser?.close();
    await Promise.all([server?.close(), app?.close(), otherApp?.close()]);
  });

  it('the refresh token lives in an HttpOnly cookie the page cannot read, and refresh works from the page', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(app.url);
    const email = uniqueEmail();
    const signup = ok(await call(page, endpoint, SIGNUP, { email, password: TEST_PASSWORD })).signup;
    expect(signup.refreshToken).toBeNull();
    // The browser holds it (the development cookie: plain HTTP to 127.0.0.1) …
    const [cookie] = (await context.cookies(server.url)).filter((candidate) => candidate.name === 'tessera_refresh');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
    expect(cookie!.value.length).toBeGreaterThan(20);
    // … and the page cannot read it.
    const visible = await page.evaluate(() => document.cookie);
    expect(visible).not.toContain('tessera_refresh');
    expect(visible).not.toContain(cookie!.value);

    const refreshed = ok(await call(page, endpoint, REFRESH_FROM_COOKIE)).refreshToken;
    expect(refreshed.user.email).toBe(email);
    expect(refreshed.refreshToken).toBeNull();
    expect(refreshed.session.id).toBe(signup.session.id);
    expect(ok(await call(page, endpoint, ME, {}, refreshed.accessToken)).me.email).toBe(email);
    // Rotated: the browser now holds a new value.
    const [rotated] = (await context.cookies(server.url)).filter((candidate) => candidate.name === 'tessera_refresh');
    expect(rotated!.value).not.toBe(cookie!.value);
    await saveScreenshot(page, 'cors-cookie-mode-refresh-from-page');

    // A page of the same browser on an origin not listed cannot use that cookie: its call fails.
    const other = await context.newPage();
    await other.goto(otherApp.url);
    const before = graphqlPosts(server);
    expect(await call(other, endpoint, REFRESH_FROM_COOKIE)).toEqual({ failed: 'TypeError: Failed to fetch' });
    expect(graphqlPosts(server)).toBe(before);
    await context.close();
  }, 60_000);
});

describe('cookie mode from an app on a sibling subdomain (same site, HTTPS)', () => {
  // app.tessera.test and api.tessera.test are one site (tessera.test); other.example is another.
  let app: StaticServer;
  let crossSite: StaticServer;
  let server: TestServer;
  let proxy: { port: number; close(): Promise<void> };
  let browser: TestBrowser;
  let appUrl: string;
  let crossSiteUrl: string;
  let endpoint: string;
  beforeAll(async () => {
    const certificate = await selfSignedCertificate(['*.tessera.test', 'tessera.test', 'other.example']);
    [app, crossSite, browser] = await Promise.all([
      serveStatic({ files: { '/index.html': PAGE }, tls: certificate }),
      serveStatic({ files: { '/index.html': PAGE }, tls: certificate }),
      launchBrowser({ hostResolverRules: 'MAP *.tessera.test 127.0.0.1, MAP other.example 127.0.0.1', args: ['--ignore-certificate-errors'] }),
    ]);
    appUrl = `https://app.tessera.test:${app.port}`;
    crossSiteUrl = `https://other.example:${crossSite.port}`;
    // Both listed, so CORS lets both call: what keeps the cross-site page out of the cookie is SameSite.
    server = await createTestServer({
      store: 'redis',
      env: { CORS_ORIGINS: `${appUrl},${crossSiteUrl}`, REFRESH_TOKEN_TRANSPORT: 'cookie', TRUST_PROXY: '1', AUTH_ISSUER: 'https://api.tessera.test' },
    });
    // TLS in front of the gateway, as a load balancer in production.
    proxy = await tlsProxy(server.url, certificate);
    endpoint = `https://api.tessera.test:${proxy.port}/graphql`;
  });
  afterAll(async () => {
    await browser?.close();
    await Promise.all([proxy?.close(), server?.close(), app?.close(), crossSite?.close()]);
  });

  it('app.tessera.test gets the __Host- Secure cookie of api.tessera.test, cannot read it, and refreshes with it', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await page.goto(appUrl);
    const email = uniqueEmail();
    const signup = ok(await call(page, endpoint, SIGNUP, { email, password: TEST_PASSWORD })).signup;
    expect(signup.refreshToken).toBeNull();
    const cookies = await context.cookies(`https://api.tessera.test:${proxy.port}`);
    const cookie = cookies.find((candidate) => candidate.name === '__Host-tessera_refresh');
    expect(cookie).toMatchObject({ domain: 'api.tessera.test', path: '/', httpOnly: true, secure: true, sameSite: 'Strict' });
    // Host-only: the app's own host has no cookie of the gateway's.
    expect((await context.cookies(appUrl)).map((candidate) => candidate.name)).toEqual([]);
    expect(await page.evaluate(() => document.cookie)).toBe('');

    const refreshed = ok(await call(page, endpoint, REFRESH_FROM_COOKIE)).refreshToken;
    expect(refreshed.session.id).toBe(signup.session.id);
    expect(ok(await call(page, endpoint, ME, {}, refreshed.accessToken)).me.email).toBe(email);
    await saveScreenshot(page, 'cors-cookie-mode-sibling-subdomain');

    // A page on another site, even one listed in CORS_ORIGINS, does not get the cookie sent (SameSite=Strict):
    // its refresh is refused for want of a refresh token, and the session lives on.
    const other = await context.newPage();
    await other.goto(crossSiteUrl);
    const refused = await call(other, endpoint, REFRESH_FROM_COOKIE);
    expect(refused).toMatchObject({ status: 200, body: { errors: [{ extensions: { code: 'UNAUTHENTICATED' } }] } });
    expect(ok(await call(page, endpoint, REFRESH_FROM_COOKIE)).refreshToken.session.id).toBe(signup.session.id);
    await context.close();
  }, 60_000);
});
