import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { bearer, createTestServer, LOGIN, signUp, TEST_PASSWORD, type TestServer, uniqueEmail } from '../helpers/testServer.js';
import { CookieBrowser, EXCHANGE, locationOf, providersFile, signIn, startOidcProvider, type TestOidcProvider } from './support.js';

/**
 * The whole sign-in with a real OpenID Provider (node-oidc-provider) over HTTP, with a cookie
 * jar standing in for the browser: start → the provider's login and consent → callback → login
 * code → exchangeLoginCode → me. Both stores.
 */
const APP = 'http://localhost:5173/auth/done';

const ME = `{ me { id email } identities { id provider subject email linkedAt } }`;

for (const store of ['redis', 'memory'] as const) {
  describe(`sign-in with an OpenID Connect provider (${store} store)`, { timeout: 20_000 }, () => {
    let op: TestOidcProvider;
    let server: TestServer;
    let gateway: string;

    beforeAll(async () => {
      const port = await freePort();
      gateway = `http://127.0.0.1:${port}`;
      op = await startOidcProvider(`${gateway}/auth/acme/callback`);
      const file = providersFile([{ id: 'acme', kind: 'oidc', issuer: op.issuer, clientId: op.clientId, clientSecret: op.clientSecret }]);
      server = await createTestServer({
        store,
        port,
        env: { AUTH_ISSUER: gateway, IDENTITY_PROVIDERS_FILE: file, AUTH_REDIRECT_URIS: APP },
      });
    });

    afterAll(async () => {
      await server?.close();
      await op?.close();
    });

    const start = () => `${gateway}/auth/acme/start?redirect_uri=${encodeURIComponent(APP)}`;

    async function codeFor(account: { sub: string; email?: string; email_verified?: boolean }, browser = new CookieBrowser()) {
      op.accounts.set(account.sub, account);
      const back = new URL(await signIn(browser, start(), { login: account.sub, appOrigin: 'http://localhost:5173' }));
      expect(back.origin + back.pathname).toBe(APP);
      return back;
    }

    it('signs a new person up: a login code in the redirect, a session for it, amr fed, the identity listed', async () => {
      const email = uniqueEmail();
      const back = await codeFor({ sub: `alice-${email}`, email, email_verified: true });
      expect(back.searchParams.get('error')).toBeNull();
      const code = back.searchParams.get('code')!;
      expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/);
      // Never a token in a URL.
      expect(back.href).not.toMatch(/eyJ/);

      const exchanged = await server.graphql(EXCHANGE, { code });
      expect(exchanged.errors).toEqual([]);
      const auth = exchanged.data!.exchangeLoginCode;
      expect(auth.user.email).toBe(email);
      const claims = JSON.parse(Buffer.from(auth.accessToken.split('.')[1], 'base64url').toString());
      expect(claims.sub).toBe(auth.user.id);
      expect(claims.amr).toContain('fed');

      const me = await server.graphql(ME, {}, bearer(auth.accessToken));
      expect(me.errors).toEqual([]);
      expect(me.data!.me).toEqual({ id: auth.user.id, email });
      expect(me.data!.identities).toEqual([
        { id: expect.any(String), provider: 'acme', subject: `alice-${email}`, email, linkedAt: expect.any(String) },
      ]);

      const events = await server.graphql(`{ securityEvents(first: 10) { nodes { type details } } }`, {}, bearer(auth.accessToken));
      const types = events.data!.securityEvents.nodes.map((n: { type: string }) => n.type);
      expect(types).toEqual(expect.arrayContaining(['user.signed_up', 'identity.linked', 'session.created']));

      // The code was single use.
      const again = await server.graphql(EXCHANGE, { code });
      expect(again.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'LOGIN_CODE_INVALID' });
    });

    it('signs the same person into the same account the next time', async () => {
      const email = uniqueEmail();
      const person = { sub: `bob-${email}`, email, email_verified: true };
      const first = await server.graphql(EXCHANGE, { code: (await codeFor(person)).searchParams.get('code') });
      const second = await server.graphql(EXCHANGE, { code: (await codeFor(person)).searchParams.get('code') });
      expect(second.errors).toEqual([]);
      expect(second.data!.exchangeLoginCode.user.id).toBe(first.data!.exchangeLoginCode.user.id);
      expect(second.data!.exchangeLoginCode.session.id).not.toBe(first.data!.exchangeLoginCode.session.id);
    });

    it('links a provider-verified email to an account whose own email was never verified: its password and sessions end first', async () => {
      const email = uniqueEmail();
      const premade = await signUp(server, email);
      const back = await codeFor({ sub: `carol-${email}`, email, email_verified: true });
      const exchanged = await server.graphql(EXCHANGE, { code: back.searchParams.get('code') });
      expect(exchanged.errors).toEqual([]);
      const auth = exchanged.data!.exchangeLoginCode;
      expect(auth.user.id).toBe(premade.user.id);
      // Whoever made the account in advance is out: the password is gone, the session ended.
      const login = await server.graphql(LOGIN, { email, password: TEST_PASSWORD });
      expect(login.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'INVALID_CREDENTIALS' });
      const old = await server.graphql(`{ me { id } }`, {}, bearer(premade.accessToken));
      expect(old.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'SESSION_REVOKED' });
      const me = await server.graphql(ME, {}, bearer(auth.accessToken));
      expect(me.data!.identities.map((i: { provider: string }) => i.provider)).toEqual(['acme']);
    });

    it('never links an email the provider does not assert as verified to an existing account', async () => {
      const email = uniqueEmail();
      const victim = await signUp(server, email);
      const back = await codeFor({ sub: `mallory-${email}`, email, email_verified: false });
      expect(back.searchParams.get('code')).toBeNull();
      expect(back.searchParams.get('error')).toBe('email_not_verified');
      const identities = await server.graphql(ME, {}, bearer(victim.accessToken));
      expect(identities.data!.identities).toEqual([]);
      // The victim's password still works.
      expect((await server.graphql(LOGIN, { email, password: TEST_PASSWORD })).errors).toEqual([]);
    });

    it('a new account from an unverified provider email is made, and is not linked to anything else', async () => {
      const email = uniqueEmail();
      const back = await codeFor({ sub: `dave-${email}`, email, email_verified: false });
      const exchanged = await server.graphql(EXCHANGE, { code: back.searchParams.get('code') });
      expect(exchanged.errors).toEqual([]);
      expect(exchanged.data!.exchangeLoginCode.user.email).toBe(email);
      // No password: logging in with one fails as any wrong password does.
      const login = await server.graphql(LOGIN, { email, password: TEST_PASSWORD });
      expect(login.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'INVALID_CREDENTIALS' });
    });

    it('the person declining consent comes back with ?error=access_denied and no code', async () => {
      const email = uniqueEmail();
      op.accounts.set(`erin-${email}`, { sub: `erin-${email}`, email, email_verified: true });
      const back = new URL(
        await signIn(new CookieBrowser(), start(), { login: `erin-${email}`, appOrigin: 'http://localhost:5173', consent: 'abort' }),
      );
      expect(back.searchParams.get('error')).toBe('access_denied');
      expect(back.searchParams.get('code')).toBeNull();
    });

    it('deleting the account erases its identity: the same person signing in again gets a new account', async () => {
      const email = uniqueEmail();
      const person = { sub: `gone-${email}`, email, email_verified: true };
      const first = (await server.graphql(EXCHANGE, { code: (await codeFor(person)).searchParams.get('code') })).data!.exchangeLoginCode;
      const deleted = await server.graphql(`mutation { deleteAccount }`, {}, bearer(first.accessToken));
      expect(deleted.errors).toEqual([]);
      const again = await server.graphql(EXCHANGE, { code: (await codeFor(person)).searchParams.get('code') });
      expect(again.errors).toEqual([]);
      expect(again.data!.exchangeLoginCode.user.id).not.toBe(first.user.id);
      expect(again.data!.exchangeLoginCode.user.email).toBe(email);
    });

    it('/start sends state, nonce and PKCE S256 to the provider, and binds the flow to the browser', async () => {
      const browser = new CookieBrowser();
      const response = await browser.request(start());
      expect(response.status).toBe(302);
      expect(response.headers.get('cache-control')).toBe('no-store');
      const to = new URL(locationOf(response, start()));
      expect(to.origin).toBe(op.issuer);
      expect(to.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(to.searchParams.get('nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(to.searchParams.get('code_challenge_method')).toBe('S256');
      expect(to.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(to.searchParams.get('redirect_uri')).toBe(`${gateway}/auth/acme/callback`);
      const setCookie = response.headers.get('set-cookie')!;
      expect(setCookie).toMatch(/^tessera_idp=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=600$/);
    });
  });
}

describe('sign-in with a provider in cookie mode', { timeout: 20_000 }, () => {
  let op: TestOidcProvider;
  let server: TestServer;
  let gateway: string;

  beforeAll(async () => {
    const port = await freePort();
    gateway = `http://127.0.0.1:${port}`;
    op = await startOidcProvider(`${gateway}/auth/acme/callback`);
    const file = providersFile([{ id: 'acme', kind: 'oidc', issuer: op.issuer, clientId: op.clientId, clientSecret: op.clientSecret }]);
    server = await createTestServer({
      store: 'memory',
      port,
      env: { AUTH_ISSUER: gateway, IDENTITY_PROVIDERS_FILE: file, AUTH_REDIRECT_URIS: APP, REFRESH_TOKEN_TRANSPORT: 'cookie' },
    });
  });

  afterAll(async () => {
    await server?.close();
    await op?.close();
  });

  it('exchangeLoginCode puts the refresh token in the HttpOnly cookie, not the body, and the cookie refreshes', async () => {
    const email = uniqueEmail();
    op.accounts.set('cookie-person', { sub: 'cookie-person', email, email_verified: true });
    const back = new URL(
      await signIn(new CookieBrowser(), `${gateway}/auth/acme/start?redirect_uri=${encodeURIComponent(APP)}`, {
        login: 'cookie-person',
        appOrigin: 'http://localhost:5173',
      }),
    );
    const exchanged = await server.graphql(EXCHANGE, { code: back.searchParams.get('code') });
    expect(exchanged.errors).toEqual([]);
    expect(exchanged.data!.exchangeLoginCode.refreshToken).toBeNull();
    const cookie = exchanged.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^tessera_refresh=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    expect(exchanged.headers.get('cache-control')).toBe('no-store');
    const refreshed = await server.graphql(`mutation { refreshToken { user { email } } }`, {}, { cookie: cookie.split(';')[0]! });
    expect(refreshed.errors).toEqual([]);
    expect(refreshed.data!.refreshToken.user.email).toBe(email);
  });
});
