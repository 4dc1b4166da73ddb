import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/clock.js';
import { RedisKeys } from '../../src/store/redisKeys.js';
import { freePort } from '../helpers/ports.js';
import { inspector } from '../helpers/redis.js';
import { createTestServer, signUp, type TestServer, uniqueEmail } from '../helpers/testServer.js';
import { type FakeProvider, startFakeProvider, type TokenMode } from './fakeProvider.js';
import { CookieBrowser, EXCHANGE, locationOf, providersFile } from './support.js';

/**
 * Every abuse case of issue 14 against the callback and the login code: each ends with a clear
 * `?error=` redirect (or a 400 / an error code), never a session, never a 500. The provider is
 * a small one of the test's own (fakeProvider.ts), since a certified provider will not sign bad
 * tokens.
 */
const APP = 'http://localhost:5173/auth/done';
const APP_ORIGIN = 'http://localhost:5173';

/** The system clock, moved forward by hand (login-code expiry). */
class OffsetClock implements Clock {
  offset = 0;
  now(): number {
    return Date.now() + this.offset;
  }
}

describe('sign-in abuse', { timeout: 20_000 }, () => {
  let fake: FakeProvider;
  let server: TestServer;
  let gateway: string;
  const clock = new OffsetClock();

  beforeAll(async () => {
    fake = await startFakeProvider();
    const port = await freePort();
    gateway = `http://127.0.0.1:${port}`;
    const file = providersFile([
      { id: 'fake', kind: 'oidc', issuer: fake.issuer, clientId: fake.clientId, clientSecret: fake.clientSecret },
      // Nobody listens there: discovery cannot succeed.
      { id: 'down', kind: 'oidc', issuer: `http://127.0.0.1:${await freePort()}`, clientId: 'c', clientSecret: 's' },
    ]);
    server = await createTestServer({
      store: 'redis',
      port,
      clock,
      env: { AUTH_ISSUER: gateway, IDENTITY_PROVIDERS_FILE: file, AUTH_REDIRECT_URIS: APP, IDENTITY_PROVIDER_TIMEOUT: '1s' },
    });
  });

  afterAll(async () => {
    await server?.close();
    await fake?.close();
  });

  afterEach(() => {
    fake.mode = 'ok';
    clock.offset = 0;
    // No answer of the gateway in this file was a 500.
    expect(server.logs.filter((line) => line.includes('"status":500'))).toEqual([]);
  });

  const start = (provider = 'fake', redirect = APP) => `${gateway}/auth/${provider}/start?redirect_uri=${encodeURIComponent(redirect)}`;

  /** /start in `browser`: the provider's authorize parameters, and the callback URL a real provider would send the browser to. */
  async function begin(browser = new CookieBrowser()) {
    const response = await browser.request(start());
    expect(response.status).toBe(302);
    const authorize = new URL(locationOf(response, start())).searchParams;
    const code = fake.issueCode(authorize);
    const callback = `${gateway}/auth/fake/callback?code=${encodeURIComponent(code)}&state=${authorize.get('state')}`;
    return { browser, authorize, code, callback };
  }

  async function callback(browser: CookieBrowser, url: string) {
    const response = await browser.request(url);
    return { status: response.status, location: response.headers.get('location'), body: response.status === 302 ? '' : await response.text() };
  }

  function errorOf(location: string | null): string | null {
    expect(location).toBeTruthy();
    const back = new URL(location!);
    expect(back.origin).toBe(APP_ORIGIN);
    // Never a code next to an error.
    expect(back.searchParams.get('code')).toBeNull();
    return back.searchParams.get('error');
  }

  it('a correct flow with this provider works (so each case below fails for its own reason)', async () => {
    fake.person = { sub: `ok-${uniqueEmail()}`, email: uniqueEmail(), email_verified: true };
    const flow = await begin();
    const answer = await callback(flow.browser, flow.callback);
    expect(answer.status).toBe(302);
    const code = new URL(answer.location!).searchParams.get('code');
    expect(code).toBeTruthy();
    expect((await server.graphql(EXCHANGE, { code })).errors).toEqual([]);
  });

  describe('state', () => {
    it('missing: 400, the provider is never asked', async () => {
      const before = fake.tokenRequests;
      const answer = await callback(new CookieBrowser(), `${gateway}/auth/fake/callback?code=abc`);
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.body)).toMatchObject({ error: 'invalid_state' });
      expect(fake.tokenRequests).toBe(before);
    });

    it('tampered: 400', async () => {
      const flow = await begin();
      const tampered = flow.callback.replace(/state=([^&]+)/, (_m, s: string) => `state=${s.slice(0, -2)}${s.endsWith('AA') ? 'BB' : 'AA'}`);
      const answer = await callback(flow.browser, tampered);
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.body)).toMatchObject({ error: 'invalid_state' });
    });

    it('replayed: the second use is refused', async () => {
      fake.person = { sub: `replay-${uniqueEmail()}`, email: uniqueEmail(), email_verified: true };
      const flow = await begin();
      expect((await callback(flow.browser, flow.callback)).status).toBe(302);
      const again = await callback(flow.browser, flow.callback);
      expect(again.status).toBe(400);
      expect(JSON.parse(again.body)).toMatchObject({ error: 'invalid_state' });
    });

    it('opened in another browser (a stolen link): refused, and the state is spent', async () => {
      const flow = await begin();
      const thief = new CookieBrowser();
      expect(errorOf((await callback(thief, flow.callback)).location)).toBe('invalid_state');
      const owner = await callback(flow.browser, flow.callback);
      expect(owner.status).toBe(400);
    });
  });

  describe('the ID token', () => {
    it.each<[TokenMode, string]>([
      ['wrong_nonce', 'a nonce of another flow'],
      ['wrong_iss', 'another issuer'],
      ['wrong_aud', 'another audience'],
      ['expired', 'expired'],
      ['other_key', 'signed with another key'],
    ])('%s (%s): ?error=invalid_id_token, no session', async (mode) => {
      fake.person = { sub: `bad-${mode}-${uniqueEmail()}`, email: uniqueEmail(), email_verified: true };
      fake.mode = mode;
      const flow = await begin();
      const answer = await callback(flow.browser, flow.callback);
      expect(answer.status).toBe(302);
      expect(errorOf(answer.location)).toBe('invalid_id_token');
      // Nobody was signed up for it.
      const users = await server.store.findUserByEmail(fake.person.email!);
      expect(users).toBeNull();
    });
  });

  it('an authorization code replayed in a new flow is refused by the provider: ?error=provider_error', async () => {
    fake.person = { sub: `code-${uniqueEmail()}`, email: uniqueEmail(), email_verified: true };
    const first = await begin();
    expect((await callback(first.browser, first.callback)).status).toBe(302);
    // The same browser starts again and carries the spent code to the new flow's callback.
    const second = await begin(first.browser);
    const replay = `${gateway}/auth/fake/callback?code=${encodeURIComponent(first.code)}&state=${second.authorize.get('state')}`;
    expect(errorOf((await callback(first.browser, replay)).location)).toBe('provider_error');
  });

  it('the provider answers 500: ?error=provider_error', async () => {
    fake.mode = 'status500';
    const flow = await begin();
    expect(errorOf((await callback(flow.browser, flow.callback)).location)).toBe('provider_error');
  });

  it('the provider does not answer within IDENTITY_PROVIDER_TIMEOUT: ?error=provider_unavailable', async () => {
    fake.mode = 'hang';
    const flow = await begin();
    expect(errorOf((await callback(flow.browser, flow.callback)).location)).toBe('provider_unavailable');
  });

  it('a provider that cannot be reached at /start: ?error=provider_unavailable', async () => {
    const response = await new CookieBrowser().request(start('down'));
    expect(response.status).toBe(302);
    expect(errorOf(response.headers.get('location'))).toBe('provider_unavailable');
  });

  describe('redirect_uri', () => {
    it.each([
      ['not listed', 'https://evil.example.com/auth/done'],
      ['with an extra path', `${APP}/more`],
      ['on another port', 'http://localhost:5174/auth/done'],
      ['with a query added', `${APP}?next=/admin`],
    ])('%s: 400, no redirect', async (_case, uri) => {
      const response = await new CookieBrowser().request(start('fake', uri));
      expect(response.status).toBe(400);
      expect(response.headers.get('location')).toBeNull();
      expect(await response.json()).toMatchObject({ error: 'invalid_redirect_uri' });
    });

    it('missing: 400', async () => {
      const response = await new CookieBrowser().request(`${gateway}/auth/fake/start`);
      expect(response.status).toBe(400);
    });
  });

  it('an unknown provider is 404', async () => {
    expect((await new CookieBrowser().request(`${gateway}/auth/nobody/start?redirect_uri=${encodeURIComponent(APP)}`)).status).toBe(404);
    expect((await new CookieBrowser().request(`${gateway}/auth/fake/elsewhere`)).status).toBe(404);
  });

  describe('the login code', () => {
    async function loginCode(): Promise<string> {
      fake.person = { sub: `lc-${uniqueEmail()}`, email: uniqueEmail(), email_verified: true };
      const flow = await begin();
      const answer = await callback(flow.browser, flow.callback);
      return new URL(answer.location!).searchParams.get('code')!;
    }

    it('replayed: refused the second time', async () => {
      const code = await loginCode();
      expect((await server.graphql(EXCHANGE, { code })).errors).toEqual([]);
      const again = await server.graphql(EXCHANGE, { code });
      expect(again.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'LOGIN_CODE_INVALID' });
    });

    it('expired after 60 seconds', async () => {
      const code = await loginCode();
      clock.offset = 61_000;
      const late = await server.graphql(EXCHANGE, { code });
      expect(late.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'LOGIN_CODE_INVALID' });
      expect(late.data).toBeNull();
    });

    it.each([
      ['forged', 'A'.repeat(43)],
      ['malformed', 'not a code'],
      ['empty', ''],
    ])('%s: refused', async (_case, code) => {
      const answer = await server.graphql(EXCHANGE, { code });
      expect(answer.status).toBe(200);
      expect(answer.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'LOGIN_CODE_INVALID' });
    });
  });

  /** Every key and stored value under the gateway's prefix, as text. */
  async function everythingStored(): Promise<string[]> {
    const redis = inspector();
    const values: string[] = [];
    for (const key of await redis.keys(`${server.config.redisKeyPrefix}*`)) {
      const type = await redis.type(key);
      if (type === 'string') values.push((await redis.get(key))!);
      else if (type === 'hash') values.push(...Object.values(await redis.hgetall(key)));
      else if (type === 'list') values.push(...(await redis.lrange(key, 0, -1)));
      else if (type === 'stream') for (const [, fields] of await redis.xrange(key, '-', '+')) values.push(...fields);
      values.push(key);
    }
    redis.disconnect();
    return values;
  }

  it('Redis holds neither the state, the browser binding nor the login code: only their hashes', async () => {
    fake.person = { sub: `stored-${uniqueEmail()}`, email: uniqueEmail(), email_verified: true };
    const flow = await begin();
    const binding = flow.browser.cookies(gateway).get('tessera_idp')!;
    expect(binding).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const state = flow.authorize.get('state')!;
    // While the flow is open, its record is there (under the state's hash) …
    const during = await everythingStored();
    expect(during.some((v) => v.includes(':idpflow:state:'))).toBe(true);
    for (const secret of [state, binding]) expect(during.filter((v) => v.includes(secret))).toEqual([]);
    const answer = await callback(flow.browser, flow.callback);
    const code = new URL(answer.location!).searchParams.get('code')!;
    // … and so is the login code's, before it is exchanged.
    const after = await everythingStored();
    expect(after.some((v) => v.includes(':idpflow:code:'))).toBe(true);
    expect(after.some((v) => v.includes('identity.linked'))).toBe(true);
    for (const secret of [code, state, binding]) expect(after.filter((v) => v.includes(secret))).toEqual([]);
    expect((await server.graphql(EXCHANGE, { code })).errors).toEqual([]);
  });

  it('a disabled account: ?error=account_disabled', async () => {
    const email = uniqueEmail();
    const account = await signUp(server, email);
    fake.person = { sub: `disabled-${email}`, email, email_verified: true };
    const first = await begin();
    const code = new URL((await callback(first.browser, first.callback)).location!).searchParams.get('code');
    expect(code).toBeTruthy();
    // Disabled as disableUser leaves it (the user hash's field `d`), written directly: that mutation is the accounts work's.
    const redis = inspector();
    await redis.hset(new RedisKeys(server.config.redisKeyPrefix).user(account.user.id), 'd', '1');
    redis.disconnect();
    const [after] = await server.store.getUsers([account.user.id]);
    expect(after?.disabled).toBe(true);
    // A login code issued before the account was disabled no longer starts a session.
    const late = await server.graphql(EXCHANGE, { code });
    expect(late.errors[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', reason: 'ACCOUNT_DISABLED' });
    const second = await begin();
    expect(errorOf((await callback(second.browser, second.callback)).location)).toBe('account_disabled');
  });
});
