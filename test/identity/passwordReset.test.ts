import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { type SmtpInbox, startSmtpInbox } from '../helpers/smtpInbox.js';
import { bearer, createTestServer, LOGIN, type TestServer, uniqueEmail } from '../helpers/testServer.js';
import { CookieBrowser, EXCHANGE, providersFile, signIn, startOidcProvider, type TestOidcProvider } from './support.js';

/** An account made by a provider sign-in has no password, and sets one through the reset flow (section 9), over real SMTP. */
const APP = 'http://localhost:5173/auth/done';

describe('a passwordless account from a provider', { timeout: 20_000 }, () => {
  let op: TestOidcProvider;
  let server: TestServer;
  let mailbox: SmtpInbox;
  let gateway: string;

  beforeAll(async () => {
    mailbox = await startSmtpInbox();
    const port = await freePort();
    gateway = `http://127.0.0.1:${port}`;
    op = await startOidcProvider(`${gateway}/auth/acme/callback`);
    const file = providersFile([{ id: 'acme', kind: 'oidc', issuer: op.issuer, clientId: op.clientId, clientSecret: op.clientSecret }]);
    server = await createTestServer({
      store: 'redis',
      port,
      env: { ...mailbox.env, AUTH_ISSUER: gateway, IDENTITY_PROVIDERS_FILE: file, AUTH_REDIRECT_URIS: APP },
    });
  });

  afterAll(async () => {
    await server?.close();
    await op?.close();
    await mailbox?.close();
  });

  it('has hasPassword false and a verified email, and gets a password through requestPasswordReset', async () => {
    const email = uniqueEmail();
    op.accounts.set('reset-person', { sub: 'reset-person', email, email_verified: true });
    const back = new URL(
      await signIn(new CookieBrowser(), `${gateway}/auth/acme/start?redirect_uri=${encodeURIComponent(APP)}`, {
        login: 'reset-person',
        appOrigin: 'http://localhost:5173',
      }),
    );
    const auth = (await server.graphql(EXCHANGE, { code: back.searchParams.get('code') })).data!.exchangeLoginCode;
    const me = await server.graphql(`{ me { email emailVerified hasPassword } }`, {}, bearer(auth.accessToken));
    expect(me.data!.me).toEqual({ email, emailVerified: true, hasPassword: false });

    expect((await server.graphql(`mutation($e: String!) { requestPasswordReset(email: $e) }`, { e: email })).data).toEqual({ requestPasswordReset: true });
    await mailbox.waitFor(() => mailbox.mailsTo(email).some((m) => m.subject.includes('Reset your')), 10_000, 'the reset mail');
    const token = mailbox.mailsTo(email).find((m) => m.subject.includes('Reset your'))!.token;
    const reset = await server.graphql(`mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) { user { hasPassword } } }`, {
      t: token,
      p: 'a brand new password',
    });
    expect(reset.errors).toEqual([]);
    expect(reset.data!.resetPassword.user.hasPassword).toBe(true);
    expect((await server.graphql(LOGIN, { email, password: 'a brand new password' })).errors).toEqual([]);
  });
});
