import { createLocalJWKSet, type JSONWebKeySet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bearer,
  createTestServer,
  LOGIN,
  REFRESH,
  SIGNUP,
  signUp,
  type TestServer,
  uniqueEmail,
} from '../helpers/testServer.js';

const PASSWORD = 'correct horse battery';

for (const kind of ['redis', 'memory'] as const) {
  describe(`the GraphQL API over HTTP (${kind} store)`, () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await createTestServer({ store: kind });
    });
    afterAll(() => server.close());

    const signup = (email?: string) => signUp(server, email, PASSWORD);

    it('signup returns a token pair, the user and the session, uncached', async () => {
      const answer = await server.graphql(SIGNUP, { email: '  New.User@Example.COM ', password: PASSWORD }, {
        'user-agent': 'e2e-test/1.0',
      });
      expect(answer.errors).toEqual([]);
      const p = answer.data!.signup;
      expect(p.tokenType).toBe('Bearer');
      expect(p.expiresIn).toBe(900);
      expect(p.user.email).toBe('new.user@example.com');
      expect(p.user.roles).toEqual(['user']);
      expect(typeof p.refreshToken).toBe('string');
      expect(p.refreshToken.split('.')).toHaveLength(5);
      expect(new Date(p.accessTokenExpiresAt).getTime() - Date.now()).toBeGreaterThan(890_000);
      expect(new Date(p.refreshTokenExpiresAt).getTime() - Date.now()).toBeGreaterThan(29 * 86_400_000);
      expect(p.session).toMatchObject({ current: true, userAgent: 'e2e-test/1.0', ipAddress: '127.0.0.1' });
      expect(answer.headers.get('cache-control')).toBe('no-store');
    });

    it('an empty User-Agent is recorded as none', async () => {
      const answer = await server.graphql(SIGNUP, { email: uniqueEmail(), password: PASSWORD }, { 'user-agent': '' });
      expect(answer.data!.signup.session.userAgent).toBeNull();
    });

    it('the access token verifies with the published JWKS alone', async () => {
      const p = await signup();
      const jwks = (await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
      expect(jwks.keys[0]).toMatchObject({ use: 'sig', alg: 'EdDSA' });
      expect(JSON.stringify(jwks)).not.toContain('"d"');
      const { payload, protectedHeader } = await jwtVerify(p.accessToken, createLocalJWKSet(jwks), {
        issuer: 'http://localhost:4000',
        audience: 'tessera',
        typ: 'at+jwt',
      });
      expect(protectedHeader.kid).toBe(jwks.keys[0]?.kid);
      expect(payload).toMatchObject({ sub: p.user.id, sid: p.session.id, roles: ['user'], scope: 'user', client_id: 'tessera' });
      expect(typeof payload.jti).toBe('string');
    });

    it('a second signup with the same address (any case) is BAD_USER_INPUT', async () => {
      const email = uniqueEmail();
      await signup(email);
      const again = await server.graphql(SIGNUP, { email: email.toUpperCase(), password: PASSWORD });
      expect(again.errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
    });

    it('signup refuses a malformed email and a short password', async () => {
      const bad = await server.graphql(SIGNUP, { email: 'not-an-email', password: PASSWORD });
      expect(bad.errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
      const short = await server.graphql(SIGNUP, { email: uniqueEmail(), password: '1234567' });
      expect(short.errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
    });

    it('login with a wrong password or an unknown email fails the same way', async () => {
      const email = uniqueEmail();
      await signup(email);
      const wrong = await server.graphql(LOGIN, { email, password: 'wrong password' });
      const unknown = await server.graphql(LOGIN, { email: uniqueEmail(), password: PASSWORD });
      for (const answer of [wrong, unknown]) {
        expect(answer.data).toBeNull();
        expect(answer.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'INVALID_CREDENTIALS' });
      }
      expect(wrong.errors[0]?.message).toBe(unknown.errors[0]?.message);
    });

    it('login starts a new session; me and sessions answer for it', async () => {
      const email = uniqueEmail();
      const first = await signup(email);
      const login = await server.graphql(LOGIN, { email: email.toUpperCase(), password: PASSWORD });
      expect(login.errors).toEqual([]);
      const second = login.data!.login;
      expect(second.user.id).toBe(first.user.id);
      expect(second.session.id).not.toBe(first.session.id);

      const me = await server.graphql('{ me { id email roles createdAt } }', {}, bearer(second.accessToken));
      expect(me.data).toEqual({ me: first.user });

      const sessions = await server.graphql('{ sessions { id current } }', {}, bearer(second.accessToken));
      expect(sessions.data!.sessions).toEqual([
        { id: second.session.id, current: true },
        { id: first.session.id, current: false },
      ]);
    });

    it('fields that need a user fail with the reason; the rest of the request still works', async () => {
      const missing = await server.graphql('{ me { id } }');
      expect(missing.data).toEqual({ me: null });
      expect(missing.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_MISSING' });

      const garbage = await server.graphql('{ me { id } }', {}, bearer('not.a.token'));
      expect(garbage.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_INVALID' });

      const email = uniqueEmail();
      await signup(email);
      const login = await server.graphql(LOGIN, { email, password: PASSWORD }, bearer('not.a.token'));
      expect(login.errors).toEqual([]);
      expect(login.data!.login.user.email).toBe(email);
    });

    it('refresh rotates the pair; the old token within the grace window gets the same successor', async () => {
      const p = await signup();
      const r1 = await server.graphql(REFRESH, { t: p.refreshToken });
      expect(r1.errors).toEqual([]);
      const next = r1.data!.refreshToken;
      expect(next.refreshToken).not.toBe(p.refreshToken);
      expect(next.accessToken).not.toBe(p.accessToken);
      expect(next.session.id).toBe(p.session.id);
      expect(r1.headers.get('cache-control')).toBe('no-store');

      const retry = await server.graphql(REFRESH, { t: p.refreshToken });
      expect(retry.errors).toEqual([]);
      expect(retry.data!.refreshToken.refreshToken).toBe(next.refreshToken);

      const me = await server.graphql('{ me { id } }', {}, bearer(next.accessToken));
      expect(me.data).toEqual({ me: { id: p.user.id } });
    });

    it('a replayed older token revokes the session, access tokens included', async () => {
      const p = await signup();
      const r1 = (await server.graphql(REFRESH, { t: p.refreshToken })).data!.refreshToken;
      const r2 = (await server.graphql(REFRESH, { t: r1.refreshToken })).data!.refreshToken;
      const replay = await server.graphql(REFRESH, { t: p.refreshToken });
      expect(replay.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'REFRESH_TOKEN_REUSED' });

      const me = await server.graphql('{ me { id } }', {}, bearer(r2.accessToken));
      expect(me.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'SESSION_REVOKED' });
      const live = await server.graphql(REFRESH, { t: r2.refreshToken });
      expect(live.errors[0]?.extensions.reason).toBe('REFRESH_TOKEN_INVALID');
    });

    it('a forged refresh token is invalid and ends nothing', async () => {
      const p = await signup();
      const parts = p.refreshToken.split('.');
      parts[3] = parts[3].startsWith('A') ? `B${parts[3].slice(1)}` : `A${parts[3].slice(1)}`;
      for (const t of [parts.join('.'), 'garbage', '']) {
        const answer = await server.graphql(REFRESH, { t });
        expect(answer.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'REFRESH_TOKEN_INVALID' });
      }
      const none = await server.graphql(REFRESH, {});
      expect(none.errors[0]?.extensions.reason).toBe('REFRESH_TOKEN_INVALID');
      const still = await server.graphql(REFRESH, { t: p.refreshToken });
      expect(still.errors).toEqual([]);
    });

    it('revokeSession ends the current session at once', async () => {
      const p = await signup();
      const revoke = await server.graphql('mutation { revokeSession }', {}, bearer(p.accessToken));
      expect(revoke.data).toEqual({ revokeSession: true });
      const me = await server.graphql('{ me { id } }', {}, bearer(p.accessToken));
      expect(me.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'SESSION_REVOKED' });
      const refresh = await server.graphql(REFRESH, { t: p.refreshToken });
      expect(refresh.errors[0]?.extensions.reason).toBe('REFRESH_TOKEN_INVALID');
    });

    it("revokeSession by id ends one of the caller's sessions; another user's id revokes nothing", async () => {
      const email = uniqueEmail();
      const a = await signup(email);
      const b = (await server.graphql(LOGIN, { email, password: PASSWORD })).data!.login;
      const stranger = await signup();

      const foreign = await server.graphql(
        'mutation($id: ID) { revokeSession(sessionId: $id) }',
        { id: stranger.session.id },
        bearer(a.accessToken),
      );
      expect(foreign.data).toEqual({ revokeSession: false });
      expect((await server.graphql('{ me { id } }', {}, bearer(stranger.accessToken))).data).toEqual({
        me: { id: stranger.user.id },
      });

      const own = await server.graphql('mutation($id: ID) { revokeSession(sessionId: $id) }', { id: b.session.id }, bearer(a.accessToken));
      expect(own.data).toEqual({ revokeSession: true });
      expect((await server.graphql('{ me { id } }', {}, bearer(b.accessToken))).errors[0]?.extensions.reason).toBe(
        'SESSION_REVOKED',
      );
      expect((await server.graphql('{ me { id } }', {}, bearer(a.accessToken))).data).toEqual({ me: { id: a.user.id } });
    });

    it('revokeAllSessions ends every session of the caller', async () => {
      const email = uniqueEmail();
      const a = await signup(email);
      const b = (await server.graphql(LOGIN, { email, password: PASSWORD })).data!.login;
      const all = await server.graphql('mutation { revokeAllSessions }', {}, bearer(a.accessToken));
      expect(all.data).toEqual({ revokeAllSessions: 2 });
      for (const token of [a.accessToken, b.accessToken]) {
        const me = await server.graphql('{ me { id } }', {}, bearer(token));
        expect(me.errors[0]?.extensions.reason).toBe('SESSION_REVOKED');
      }
    });

    it('mutations that need a user say so without a token', async () => {
      for (const m of ['mutation { revokeSession }', 'mutation { revokeAllSessions }']) {
        const answer = await server.graphql(m);
        expect(answer.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_MISSING' });
      }
    });
  });
}

describe('AUTH_CLIENT_ID', () => {
  it('is the client_id (RFC 9068) of every access token issued, at signup, login and refresh', async () => {
    const server = await createTestServer({ store: 'memory', env: { AUTH_CLIENT_ID: 'shop-web' } });
    try {
      const email = uniqueEmail();
      const signedUp = await signUp(server, email, PASSWORD);
      const login = (await server.graphql(LOGIN, { email, password: PASSWORD })).data!.login;
      const refreshed = (await server.graphql(REFRESH, { t: login.refreshToken })).data!.refreshToken;
      for (const { accessToken } of [signedUp, login, refreshed]) {
        const payload = JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
        expect(payload.client_id).toBe('shop-web');
        expect((await server.graphql('{ me { id } }', {}, bearer(accessToken))).data).toEqual({ me: { id: signedUp.user.id } });
      }
    } finally {
      await server.close();
    }
  });
});
