import { describe, expect, it } from 'vitest';
import { bearer, createTestServer, LOGIN, REFRESH, SIGNUP, uniqueEmail } from '../helpers/testServer.js';

describe('logs', () => {
  it('never contain passwords, tokens, the Authorization header or cookies, even at debug', async () => {
    const server = await createTestServer({ store: 'memory', env: { REFRESH_TOKEN_TRANSPORT: 'both' } });
    const email = uniqueEmail();
    const password = 'very-secret-password-4711';
    const signup = (await server.graphql(SIGNUP, { email, password })).data!.signup;
    const login = (await server.graphql(LOGIN, { email, password })).data!.login;
    await server.graphql(LOGIN, { email, password: 'wrong-secret-password-0815' });
    const cookie = `__Host-tessera_refresh=${login.refreshToken}`;
    const refreshed = (await server.graphql(REFRESH, { t: login.refreshToken }, { cookie })).data!.refreshToken;
    await server.graphql('{ me { id email } }', {}, bearer(refreshed.accessToken));
    await server.graphql('{ me { nope } }', {}, bearer(signup.accessToken));
    await fetch(`${server.url}/graphql?query=${encodeURIComponent(`mutation { login(email: "${email}", password: "${password}") { accessToken } }`)}`);
    await server.close();

    const log = server.logs.join('');
    expect(server.logs.length).toBeGreaterThan(5);
    expect(log).toContain('"path":"/graphql"');
    expect(log).toContain('[redacted]');
    for (const secret of [
      password,
      'wrong-secret-password-0815',
      signup.accessToken,
      signup.refreshToken,
      login.refreshToken,
      refreshed.accessToken,
      refreshed.refreshToken,
      refreshed.accessToken.split('.')[2],
      login.refreshToken.split('.')[3],
    ]) {
      expect(log).not.toContain(secret);
    }
  });
});
