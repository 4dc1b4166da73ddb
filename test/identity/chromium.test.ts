import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, saveScreenshot, serveStatic, type StaticServer, type TestBrowser } from '../helpers/browser.js';
import { freePort } from '../helpers/ports.js';
import { createTestServer, type TestServer, uniqueEmail } from '../helpers/testServer.js';
import { providersFile, startOidcProvider, type TestOidcProvider } from './support.js';

/** The page's document, as far as this test reads it inside the browser. */
declare const document: { getElementById(id: string): { textContent: string | null } | null };

/**
 * Once in real Chromium: a single-page app's "Sign in with Acme" link → the gateway's /start →
 * the real oidc-provider's login and consent pages, filled in and submitted → the callback → the
 * app's page with `?code=`, whose script calls exchangeLoginCode and then `me` (CORS, the
 * body transport) and shows the email.
 */
const APP_PAGE = (gateway: string) => `<!doctype html>
<html><body>
<a id="signin" href="${gateway}/auth/acme/start?redirect_uri=REDIRECT">Sign in with Acme</a>
<pre id="out"></pre>
<script type="module">
const params = new URLSearchParams(location.search);
const out = document.getElementById('out');
const gql = (query, variables, token) => fetch('${gateway}/graphql', {
  method: 'POST',
  headers: { 'content-type': 'application/json', ...(token ? { authorization: 'Bearer ' + token } : {}) },
  body: JSON.stringify({ query, variables }),
}).then((r) => r.json());
if (params.get('error')) out.textContent = 'error: ' + params.get('error');
if (params.get('code')) {
  // The code leaves the address bar at once; it is single use anyway.
  history.replaceState(null, '', location.pathname);
  const exchanged = await gql('mutation($c: String!) { exchangeLoginCode(code: $c) { accessToken } }', { c: params.get('code') });
  const token = exchanged.data?.exchangeLoginCode.accessToken;
  const me = token ? await gql('{ me { email } }', {}, token) : exchanged;
  out.textContent = token ? 'signed in as ' + me.data.me.email : 'failed: ' + JSON.stringify(exchanged.errors);
}
</script>
</body></html>`;

describe('sign-in with an OpenID Connect provider in Chromium', () => {
  let browser: TestBrowser;
  let app: StaticServer;
  let op: TestOidcProvider;
  let server: TestServer;

  beforeAll(async () => {
    const port = await freePort();
    const gateway = `http://127.0.0.1:${port}`;
    let page = '';
    app = await serveStatic({ files: { get '/index.html'() { return page; } } as Record<string, string>, spaFallback: true });
    const redirect = `${app.url}/auth/done`;
    page = APP_PAGE(gateway).replace('REDIRECT', encodeURIComponent(redirect));
    op = await startOidcProvider(`${gateway}/auth/acme/callback`);
    const file = providersFile([{ id: 'acme', kind: 'oidc', issuer: op.issuer, clientId: op.clientId, clientSecret: op.clientSecret }]);
    server = await createTestServer({
      store: 'redis',
      port,
      env: { AUTH_ISSUER: gateway, IDENTITY_PROVIDERS_FILE: file, AUTH_REDIRECT_URIS: redirect, CORS_ORIGINS: app.url },
    });
    browser = await launchBrowser();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await op?.close();
    await app?.close();
  });

  it('goes through the provider’s login and consent and ends signed in', async () => {
    const email = uniqueEmail();
    op.accounts.set('chromium-person', { sub: 'chromium-person', email, email_verified: true });
    const page = await browser.newPage();
    await page.goto(app.url);
    await page.click('#signin');
    await page.waitForSelector('input[name="login"]');
    await page.fill('input[name="login"]', 'chromium-person');
    await page.fill('input[name="password"]', 'any');
    await page.click('button[type="submit"]');
    await page.waitForSelector('input[value="consent"]', { state: 'attached' });
    await page.click('button[type="submit"]');
    await page.waitForFunction(() => document.getElementById('out')?.textContent !== '');
    await saveScreenshot(page, 'identity-chromium-signed-in');
    expect(await page.textContent('#out')).toBe(`signed in as ${email}`);
    // The login code left the address bar.
    expect(new URL(page.url()).search).toBe('');
  }, 60_000);
});
