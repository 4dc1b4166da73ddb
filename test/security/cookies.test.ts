import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createTestServer, LOGIN, REFRESH, SIGNUP, type TestServer, uniqueEmail } from '../helpers/testServer.js';

const PASSWORD = 'correct horse battery';

function cookieOf(headers: Headers): string {
  const [cookie] = headers.getSetCookie();
  expect(cookie).toBeDefined();
  return cookie!;
}

/** `name=value` of a Set-Cookie line, as a browser would send it back. */
function sendBack(setCookie: string): string {
  return setCookie.split(';')[0]!;
}

describe('REFRESH_TOKEN_TRANSPORT=cookie', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await createTestServer({ store: 'memory', env: { REFRESH_TOKEN_TRANSPORT: 'cookie' } });
  });
  afterAll(() => server.close());

  it('login sets an HttpOnly, Secure, SameSite=Strict __Host- cookie and leaves refreshToken null', async () => {
    const email = uniqueEmail();
    await server.graphql(SIGNUP, { email, password: PASSWORD }, { host: 'auth.example.com' });
    const login = await server.graphql(LOGIN, { email, password: PASSWORD }, { host: 'auth.example.com' });
    expect(login.data!.login.refreshToken).toBeNull();
    const cookie = cookieOf(login.headers);
    expect(cookie).toMatch(/^__Host-tessera_refresh=[^;]+; Path=\/; HttpOnly; Secure; SameSite=Strict; Max-Age=2592000$/);
    expect(cookie).not.toMatch(/Domain=/i);
  });

  it('plain http to localhost gets a development cookie without Secure', async () => {
    const signup = await server.graphql(SIGNUP, { email: uniqueEmail(), password: PASSWORD }, { host: 'localhost:4000' });
    const cookie = cookieOf(signup.headers);
    expect(cookie).toMatch(/^tessera_refresh=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
  });

  it('refreshToken reads the cookie, rotates it, and the old cookie value is then a replay', async () => {
    const host = { host: 'auth.example.com' };
    const signup = await server.graphql(SIGNUP, { email: uniqueEmail(), password: PASSWORD }, host);
    const first = sendBack(cookieOf(signup.headers));
    const refreshed = await server.graphql(REFRESH, {}, { ...host, cookie: first });
    expect(refreshed.errors).toEqual([]);
    expect(refreshed.data!.refreshToken.refreshToken).toBeNull();
    const second = sendBack(cookieOf(refreshed.headers));
    expect(second).not.toBe(first);
    const again = await server.graphql(REFRESH, {}, { ...host, cookie: second });
    expect(again.errors).toEqual([]);
  });

  it('a browser whose access token expired can still log out with the cookie; the cookie is cleared', async () => {
    const host = { host: 'auth.example.com' };
    const signup = await server.graphql(SIGNUP, { email: uniqueEmail(), password: PASSWORD }, host);
    const cookie = sendBack(cookieOf(signup.headers));
    const logout = await server.graphql('mutation { revokeSession }', {}, { ...host, cookie, ...bearer('expired.or.bad') });
    expect(logout.data).toEqual({ revokeSession: true });
    expect(cookieOf(logout.headers)).toMatch(/^__Host-tessera_refresh=; .*Max-Age=0$/);
    const me = await server.graphql('{ me { id } }', {}, bearer(signup.data!.signup.accessToken));
    expect(me.errors[0]?.extensions.reason).toBe('SESSION_REVOKED');
    const refresh = await server.graphql(REFRESH, {}, { ...host, cookie });
    expect(refresh.errors[0]?.extensions.reason).toBe('REFRESH_TOKEN_INVALID');
  });

  it('a forged cookie logs nobody out', async () => {
    const host = { host: 'auth.example.com' };
    const signup = await server.graphql(SIGNUP, { email: uniqueEmail(), password: PASSWORD }, host);
    const [name, value] = sendBack(cookieOf(signup.headers)).split('=') as [string, string];
    const parts = value.split('.');
    parts[3] = `${parts[3]!.slice(0, -2)}AA`;
    const forged = await server.graphql('mutation { revokeSession }', {}, { ...host, cookie: `${name}=${parts.join('.')}` });
    expect(forged.data).toEqual({ revokeSession: false });
    const me = await server.graphql('{ me { id } }', {}, bearer(signup.data!.signup.accessToken));
    expect(me.data).toEqual({ me: { id: signup.data!.signup.user.id } });
  });

  it('with neither a token nor a cookie, revokeSession is UNAUTHENTICATED', async () => {
    const answer = await server.graphql('mutation { revokeSession }');
    expect(answer.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_MISSING' });
  });
});

describe('REFRESH_TOKEN_TRANSPORT=both and body', () => {
  it('both: the token is in the body and in the cookie', async () => {
    const server = await createTestServer({ store: 'memory', env: { REFRESH_TOKEN_TRANSPORT: 'both' } });
    const signup = await server.graphql(SIGNUP, { email: uniqueEmail(), password: PASSWORD }, { host: 'a.example' });
    const token = signup.data!.signup.refreshToken as string;
    expect(cookieOf(signup.headers)).toContain(`__Host-tessera_refresh=${token};`);
    await server.close();
  });

  it('body (default): no cookie is set, and a cookie is ignored', async () => {
    const server = await createTestServer({ store: 'memory' });
    const signup = await server.graphql(SIGNUP, { email: uniqueEmail(), password: PASSWORD });
    expect(signup.headers.getSetCookie()).toEqual([]);
    const token = signup.data!.signup.refreshToken as string;
    const viaCookie = await server.graphql(REFRESH, {}, { cookie: `__Host-tessera_refresh=${token}` });
    expect(viaCookie.errors[0]?.extensions.reason).toBe('REFRESH_TOKEN_INVALID');
    await server.close();
  });
});
