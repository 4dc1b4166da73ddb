import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/clock.js';
import { freePort } from '../helpers/ports.js';
import { bearer, createTestServer, LOGIN, signUp, TEST_PASSWORD, type TestServer, uniqueEmail } from '../helpers/testServer.js';
import { CookieBrowser, EXCHANGE, providersFile, signIn, startOidcProvider, type TestOidcProvider } from './support.js';

/**
 * Linking while signed in (startIdentityLink, fresh auth), `identities`, and `unlinkIdentity`
 * (fresh auth; never the last way to sign in), against the real oidc-provider.
 */
const APP = 'http://localhost:5173/auth/done';
const OTHER_APP = 'http://localhost:5173/settings/linked';
const APP_ORIGIN = 'http://localhost:5173';

const LINK = `mutation($p: ID!, $r: String!) { startIdentityLink(provider: $p, redirectUri: $r) }`;
const IDENTITIES = `{ identities { id provider subject email } }`;
const UNLINK = `mutation($id: ID!) { unlinkIdentity(id: $id) }`;

class OffsetClock implements Clock {
  offset = 0;
  now(): number {
    return Date.now() + this.offset;
  }
}

describe('linking identities to a signed-in account', { timeout: 20_000 }, () => {
  let op: TestOidcProvider;
  let server: TestServer;
  let gateway: string;
  const clock = new OffsetClock();

  beforeAll(async () => {
    const port = await freePort();
    gateway = `http://127.0.0.1:${port}`;
    op = await startOidcProvider(`${gateway}/auth/acme/callback`);
    const file = providersFile([{ id: 'acme', kind: 'oidc', issuer: op.issuer, clientId: op.clientId, clientSecret: op.clientSecret }]);
    server = await createTestServer({
      store: 'memory',
      port,
      clock,
      env: { AUTH_ISSUER: gateway, IDENTITY_PROVIDERS_FILE: file, AUTH_REDIRECT_URIS: `${APP},${OTHER_APP}` },
    });
  });

  afterAll(async () => {
    await server?.close();
    await op?.close();
  });

  afterEach(() => {
    clock.offset = 0;
  });

  function person(verified = true) {
    const email = uniqueEmail();
    const account = { sub: `p-${email}`, email, email_verified: verified };
    op.accounts.set(account.sub, account);
    return account;
  }

  async function follow(url: string, login: string): Promise<URL> {
    return new URL(await signIn(new CookieBrowser(), url, { login, appOrigin: APP_ORIGIN }));
  }

  it('links an identity with another email to the caller; a later sign-in with it reaches the same account', async () => {
    const owner = await signUp(server);
    const link = await server.graphql(LINK, { p: 'acme', r: APP }, bearer(owner.accessToken));
    expect(link.errors).toEqual([]);
    const startUrl = new URL(link.data!.startIdentityLink);
    expect(startUrl.origin + startUrl.pathname).toBe(`${gateway}/auth/acme/start`);
    expect(startUrl.searchParams.get('redirect_uri')).toBe(APP);
    expect(startUrl.searchParams.get('ticket')).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const someone = person();
    const back = await follow(startUrl.href, someone.sub);
    expect(back.searchParams.get('linked')).toBe('acme');
    expect(back.searchParams.get('code')).toBeNull();

    const listed = await server.graphql(IDENTITIES, {}, bearer(owner.accessToken));
    expect(listed.data!.identities).toEqual([{ id: expect.any(String), provider: 'acme', subject: someone.sub, email: someone.email }]);

    const signedIn = await follow(`${gateway}/auth/acme/start?redirect_uri=${encodeURIComponent(APP)}`, someone.sub);
    const exchanged = await server.graphql(EXCHANGE, { code: signedIn.searchParams.get('code') });
    expect(exchanged.data!.exchangeLoginCode.user.id).toBe(owner.user.id);

    // The ticket was single use.
    const replay = await follow(startUrl.href, someone.sub);
    expect(replay.searchParams.get('error')).toBe('invalid_ticket');
  });

  it('a ticket works only with the redirect_uri it was made for', async () => {
    const owner = await signUp(server);
    const link = await server.graphql(LINK, { p: 'acme', r: APP }, bearer(owner.accessToken));
    const url = new URL(link.data!.startIdentityLink);
    url.searchParams.set('redirect_uri', OTHER_APP);
    const back = await follow(url.href, person().sub);
    expect(back.origin + back.pathname).toBe(OTHER_APP);
    expect(back.searchParams.get('error')).toBe('invalid_ticket');
    expect((await server.graphql(IDENTITIES, {}, bearer(owner.accessToken))).data!.identities).toEqual([]);
  });

  it('an identity already linked to another account is not moved: ?error=identity_in_use', async () => {
    const someone = person();
    const first = await follow(`${gateway}/auth/acme/start?redirect_uri=${encodeURIComponent(APP)}`, someone.sub);
    expect((await server.graphql(EXCHANGE, { code: first.searchParams.get('code') })).errors).toEqual([]);
    const other = await signUp(server);
    const link = await server.graphql(LINK, { p: 'acme', r: APP }, bearer(other.accessToken));
    const back = await follow(link.data!.startIdentityLink, someone.sub);
    expect(back.searchParams.get('error')).toBe('identity_in_use');
    expect((await server.graphql(IDENTITIES, {}, bearer(other.accessToken))).data!.identities).toEqual([]);
  });

  it('startIdentityLink and unlinkIdentity need fresh auth; bad input is BAD_USER_INPUT', async () => {
    const owner = await signUp(server);
    clock.offset = 6 * 60_000;
    const stale = await server.graphql(LINK, { p: 'acme', r: APP }, bearer(owner.accessToken));
    expect(stale.errors[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', reason: 'STEP_UP_REQUIRED', maxAge: 300 });
    const staleUnlink = await server.graphql(UNLINK, { id: 'x' }, bearer(owner.accessToken));
    expect(staleUnlink.errors[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', reason: 'STEP_UP_REQUIRED' });
    clock.offset = 0;
    const unknown = await server.graphql(LINK, { p: 'nobody', r: APP }, bearer(owner.accessToken));
    expect(unknown.errors[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT' });
    const badRedirect = await server.graphql(LINK, { p: 'acme', r: 'https://evil.example.com/' }, bearer(owner.accessToken));
    expect(badRedirect.errors[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT' });
    const anonymous = await server.graphql(IDENTITIES, {});
    expect(anonymous.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_MISSING' });
  });

  it('unlinks an identity of an account with a password; another account’s identity is not touched', async () => {
    const owner = await signUp(server);
    const link = await server.graphql(LINK, { p: 'acme', r: APP }, bearer(owner.accessToken));
    const someone = person();
    await follow(link.data!.startIdentityLink, someone.sub);
    const [identity] = (await server.graphql(IDENTITIES, {}, bearer(owner.accessToken))).data!.identities;

    const stranger = await signUp(server);
    expect((await server.graphql(UNLINK, { id: identity.id }, bearer(stranger.accessToken))).data!.unlinkIdentity).toBe(false);

    const unlinked = await server.graphql(UNLINK, { id: identity.id }, bearer(owner.accessToken));
    expect(unlinked.errors).toEqual([]);
    expect(unlinked.data!.unlinkIdentity).toBe(true);
    expect((await server.graphql(IDENTITIES, {}, bearer(owner.accessToken))).data!.identities).toEqual([]);
    const events = await server.graphql(`{ securityEvents(first: 5) { nodes { type } } }`, {}, bearer(owner.accessToken));
    expect(events.data!.securityEvents.nodes.map((n: { type: string }) => n.type)).toContain('identity.unlinked');
    // The password still signs in; the identity now makes an account of its own.
    expect((await server.graphql(LOGIN, { email: owner.user.email, password: TEST_PASSWORD })).errors).toEqual([]);
    const fresh = await follow(`${gateway}/auth/acme/start?redirect_uri=${encodeURIComponent(APP)}`, someone.sub);
    const exchanged = await server.graphql(EXCHANGE, { code: fresh.searchParams.get('code') });
    expect(exchanged.data!.exchangeLoginCode.user.id).not.toBe(owner.user.id);
  });

  it('refuses to unlink the last way to sign in of an account without a password', async () => {
    const someone = person();
    const back = await follow(`${gateway}/auth/acme/start?redirect_uri=${encodeURIComponent(APP)}`, someone.sub);
    const auth = (await server.graphql(EXCHANGE, { code: back.searchParams.get('code') })).data!.exchangeLoginCode;
    const [identity] = (await server.graphql(IDENTITIES, {}, bearer(auth.accessToken))).data!.identities;
    const refused = await server.graphql(UNLINK, { id: identity.id }, bearer(auth.accessToken));
    expect(refused.errors[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', reason: 'LAST_SIGN_IN_METHOD' });
    expect((await server.graphql(IDENTITIES, {}, bearer(auth.accessToken))).data!.identities).toHaveLength(1);
  });
});
