import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, recordRequests, saveScreenshot, type TestBrowser } from '../helpers/browser.js';
import { createTestServer, type TestServer, TEST_PASSWORD, uniqueEmail } from '../helpers/testServer.js';

/*
 * GraphiQL at /graphiql in real Chromium, from the gateway's own files: it renders and runs
 * operations against /graphql with nothing loaded from anywhere else (every request the page
 * makes goes to 127.0.0.1), and in cookie mode the refresh cookie it receives is sent back.
 */

/** The page's document, as far as these functions (run in the page by page.evaluate) use it; Node's lib has no DOM types. */
declare const document: { querySelector(selector: string): unknown; querySelectorAll(selector: string): unknown };

/** Puts `query` into GraphiQL's query editor (CodeMirror 5), runs it, and returns the response editor's JSON. */
async function run(page: Page, query: string): Promise<any> {
  await page.evaluate((text) => {
    const editor = document.querySelector('.graphiql-query-editor .CodeMirror') as { CodeMirror: { setValue(v: string): void } };
    editor.CodeMirror.setValue(text);
  }, query);
  // GraphiQL parses the editor's text after a short debounce; it picks HTTP or WebSocket from that parse.
  await expect
    .poll(() =>
      page.evaluate(() => {
        const editor = document.querySelector('.graphiql-query-editor .CodeMirror') as { CodeMirror: { documentAST?: { loc?: { source: { body: string } } } | null } };
        return editor.CodeMirror.documentAST?.loc?.source.body ?? null;
      }),
    )
    .toBe(query);
  const before = await responseText(page);
  await page.click('.graphiql-execute-button');
  await expect.poll(() => responseText(page), { timeout: 15_000 }).not.toBe(before);
  await expect.poll(async () => (await responseText(page)).trim().startsWith('{'), { timeout: 15_000 }).toBe(true);
  return JSON.parse(await responseText(page));
}

function responseText(page: Page): Promise<string> {
  return page.evaluate(() => {
    const editor = document.querySelector('.graphiql-response .CodeMirror') as { CodeMirror: { getValue(): string } } | null;
    return editor?.CodeMirror.getValue() ?? '';
  });
}

describe('GraphiQL at /graphiql', () => {
  let server: TestServer;
  let browser: TestBrowser;
  beforeAll(async () => {
    [server, browser] = await Promise.all([
      createTestServer({ store: 'memory', env: { REFRESH_TOKEN_TRANSPORT: 'cookie' } }),
      launchBrowser(),
    ]);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('renders from the package\'s own files, runs operations on /graphql with cookies, and nothing leaves 127.0.0.1', async () => {
    const context = await browser.newContext();
    const seen = recordRequests(context);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('response', (answer) => {
      if (answer.status() >= 400) problems.push(`${answer.status()} ${answer.url()}`);
    });
    page.on('pageerror', (error) => problems.push(String(error)));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });

    const response = await page.goto(`${server.url}/graphiql`);
    expect(response?.status()).toBe(200);
    await page.waitForSelector('.graphiql-container .graphiql-query-editor .CodeMirror', { timeout: 20_000 });
    await expect.poll(() => page.title()).toBe('Tessera · GraphiQL');
    await saveScreenshot(page, 'graphiql-loaded');

    const email = uniqueEmail();
    const signup = await run(page, `mutation { signup(email: "${email}", password: "${TEST_PASSWORD}") { user { email } refreshToken } }`);
    expect(signup).toEqual({ data: { signup: { user: { email }, refreshToken: null } } });
    // The refresh token went into the HttpOnly cookie; GraphiQL's next request sends it back.
    const refreshed = await run(page, 'mutation { refreshToken { user { email } session { current } } }');
    expect(refreshed).toEqual({ data: { refreshToken: { user: { email }, session: { current: true } } } });
    await saveScreenshot(page, 'graphiql-refreshed-from-cookie');

    expect(seen.urls().some((url) => url === `${server.url}/graphql`)).toBe(true);
    expect(seen.outside()).toEqual([]);
    expect(problems).toEqual([]);
    await context.close();
  }, 60_000);
});

describe('GraphiQL subscriptions', () => {
  let server: TestServer;
  let browser: TestBrowser;
  beforeAll(async () => {
    [server, browser] = await Promise.all([createTestServer({ store: 'memory' }), launchBrowser()]);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('go over graphql-transport-ws to the same /graphql, with the Headers tab as the connection_init payload', async () => {
    const page = await browser.newPage();
    // The WebSocket end stands in for the gateway's (the realtime tests test that one): it
    // records what GraphiQL sends and answers as a graphql-transport-ws server would.
    const received: { type: string; payload?: unknown; id?: string }[] = [];
    const wsUrl = `${server.url.replace(/^http/, 'ws')}/graphql`;
    await page.routeWebSocket(wsUrl, (ws) => {
      ws.onMessage((raw) => {
        const message = JSON.parse(String(raw)) as { type: string; id?: string; payload?: unknown };
        received.push(message);
        if (message.type === 'connection_init') ws.send(JSON.stringify({ type: 'connection_ack' }));
        if (message.type === 'subscribe') {
          ws.send(JSON.stringify({ id: message.id, type: 'next', payload: { data: { sessionEvents: { type: 'SESSION_REVOKED' } } } }));
        }
      });
    });
    await page.goto(`${server.url}/graphiql`);
    await page.waitForSelector('.graphiql-container .graphiql-query-editor .CodeMirror', { timeout: 20_000 });
    await page.getByRole('button', { name: 'Headers' }).click();
    // The secondary editors: Variables, then Headers (shown now).
    await page.waitForSelector('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror');
    await page.evaluate(() => {
      const editors = [...(document.querySelectorAll('.graphiql-editor-tool .CodeMirror') as Iterable<{ CodeMirror: { setValue(v: string): void } }>)];
      editors[1]!.CodeMirror.setValue('{"authorization": "Bearer a.b.c"}');
    });
    const answer = await run(page, 'subscription { sessionEvents { type } }');
    expect(answer).toEqual({ data: { sessionEvents: { type: 'SESSION_REVOKED' } } });
    expect(received[0]).toEqual({ type: 'connection_init', payload: { authorization: 'Bearer a.b.c' } });
    expect(received[1]).toMatchObject({ type: 'subscribe', payload: { query: 'subscription { sessionEvents { type } }' } });
    await saveScreenshot(page, 'graphiql-subscription');
    await page.context().close();
  }, 60_000);
});

describe('GraphiQL in production', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await createTestServer({
      store: 'memory',
      env: { NODE_ENV: 'production', REDIS_URL: 'redis://127.0.0.1:6379', SIGNING_KEYS: '/run/secrets/keys.json' },
    });
  });
  afterAll(() => server?.close());

  it('is not served: /graphiql and its files answer 404', async () => {
    for (const path of ['/graphiql', '/graphiql/graphiql.min.js', '/graphiql/start.js']) {
      expect((await fetch(`${server.url}${path}`)).status).toBe(404);
    }
  });
});

describe('GraphiQL outside production, over HTTP', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await createTestServer({ store: 'memory' });
  });
  afterAll(() => server?.close());

  it('the page allows loading and calling nothing but the gateway (Content-Security-Policy), and only GET/HEAD', async () => {
    const page = await fetch(`${server.url}/graphiql`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(await page.text()).not.toMatch(/https?:\/\//);
    expect((await fetch(`${server.url}/graphiql`, { method: 'POST' })).status).toBe(405);
    // Sandbox stays the landing page on /graphql.
    const landing = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(landing.status).toBe(200);
    expect(await landing.text()).toMatch(/sandbox/i);
  });
});
