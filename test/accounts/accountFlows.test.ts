import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { account, bearer, errorOf, gateway, login, mailOf, mailsOf, OPS, TEST_PASSWORD, uniqueEmail } from './support.js';

/*
 * A user's own account flows over real HTTP, with the mail read out of a real SMTP server
 * (docs/contract.md section 7), on the embedded store and on Redis.
 */

const NEW_PASSWORD = 'a brand new passphrase';

for (const store of ['memory', 'redis'] as const) {
  describe(`password reset (${store})`, () => {
    it('a reset mail, a new password: every old session ends at once, the old password fails, the new one works, email verified', async () => {
      const server = await gateway(store);
      const alice = await account(server);
      const other = await login(server, alice.email);
      expect(await server.graphql(OPS.requestReset, { email: `  ${alice.email.toUpperCase()} ` })).toMatchObject({ data: { requestPasswordReset: true } });
      const mail = await mailOf(alice.email, 'password_reset');
      expect(mail.link).toContain('/reset-password?token=');
      const reset = await server.graphql(OPS.reset, { token: mail.token, password: NEW_PASSWORD });
      expect(reset.errors).toEqual([]);
      expect(reset.data!.resetPassword.user).toMatchObject({ id: alice.id, emailVerified: true, hasPassword: true });
      // The sessions from before are over: their access tokens are refused now, their refresh tokens too.
      for (const token of [alice.accessToken, other.data!.login.accessToken]) {
        expect(errorOf(await server.graphql(OPS.me, {}, bearer(token)))).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'SESSION_REVOKED' });
      }
      expect(errorOf(await server.graphql(OPS.refresh, { t: alice.refreshToken }))).toMatchObject({ reason: 'REFRESH_TOKEN_INVALID' });
      // The session the reset started works.
      expect((await server.graphql(OPS.me, {}, bearer(reset.data!.resetPassword.accessToken))).data?.me?.id).toBe(alice.id);
      expect(errorOf(await login(server, alice.email))).toMatchObject({ reason: 'INVALID_CREDENTIALS' });
      expect((await login(server, alice.email, NEW_PASSWORD)).errors).toEqual([]);
      // Spent.
      expect(errorOf(await server.graphql(OPS.reset, { token: mail.token, password: 'yet another passphrase' }))).toEqual({
        code: 'BAD_USER_INPUT',
        reason: 'TOKEN_INVALID_OR_EXPIRED',
      });
      const events = await server.store.userEvents(alice.id, { first: 20, after: null });
      const types = events.events.map((e) => e.event.type);
      expect(types).toEqual(expect.arrayContaining(['password.reset_requested', 'password.changed', 'session.revoked']));
      expect(events.events.filter((e) => e.event.type === 'session.revoked').map((e) => e.event.details.cause)).toContain('password_reset');
    });

    it('an unknown email gets the same true and no mail; a malformed address is BAD_USER_INPUT', async () => {
      const server = await gateway(store);
      const nobody = uniqueEmail();
      expect(await server.graphql(OPS.requestReset, { email: nobody })).toMatchObject({ data: { requestPasswordReset: true }, errors: [] });
      expect(errorOf(await server.graphql(OPS.requestReset, { email: 'not an email' }))).toMatchObject({ code: 'BAD_USER_INPUT' });
      const known = await account(server);
      await server.graphql(OPS.requestReset, { email: known.email });
      await mailOf(known.email, 'password_reset');
      expect(await mailsOf(nobody, 'password_reset')).toEqual([]);
    });

    it('only the newest reset token works; a new password follows signup rules and a refused one spends nothing', async () => {
      const server = await gateway(store);
      const bob = await account(server);
      await server.graphql(OPS.requestReset, { email: bob.email });
      const first = await mailOf(bob.email, 'password_reset');
      await server.graphql(OPS.requestReset, { email: bob.email });
      const second = await mailOf(bob.email, 'password_reset');
      expect(errorOf(await server.graphql(OPS.reset, { token: first.token, password: NEW_PASSWORD }))).toMatchObject({ reason: 'TOKEN_INVALID_OR_EXPIRED' });
      expect(errorOf(await server.graphql(OPS.reset, { token: second.token, password: 'short' }))).toMatchObject({ code: 'BAD_USER_INPUT' });
      expect((await server.graphql(OPS.reset, { token: second.token, password: NEW_PASSWORD })).errors).toEqual([]);
    });

    it('per account at most PASSWORD_RESET_MAX_REQUESTS mails per window, silently; per client address RATE_LIMITED', async () => {
      const server = await gateway(store, { PASSWORD_RESET_MAX_REQUESTS: '2', PASSWORD_RESET_MAX_REQUESTS_PER_ADDRESS: '5' });
      const carol = await account(server);
      for (let i = 0; i < 4; i++) expect((await server.graphql(OPS.requestReset, { email: carol.email })).data).toEqual({ requestPasswordReset: true });
      await mailOf(carol.email, 'password_reset');
      const second = await mailOf(carol.email, 'password_reset');
      // The 3rd and 4th answered true and issued nothing: the 2nd mail's token is still the newest, and works.
      expect((await server.graphql(OPS.reset, { token: second.token, password: NEW_PASSWORD })).errors).toEqual([]);
      expect(await mailsOf(carol.email, 'password_reset')).toHaveLength(2);
      await server.graphql(OPS.requestReset, { email: uniqueEmail() });
      const refused = errorOf(await server.graphql(OPS.requestReset, { email: uniqueEmail() }));
      expect(refused).toMatchObject({ code: 'RATE_LIMITED' });
      expect(refused.retryAfter).toBeGreaterThan(0);
    });

    it('a reset clears the failed-login count, so the owner can sign in at once', async () => {
      const server = await gateway(store, { LOGIN_MAX_FAILURES: '2' });
      const dave = await account(server);
      for (let i = 0; i < 3; i++) await login(server, dave.email, 'wrong password!');
      expect(errorOf(await login(server, dave.email))).toMatchObject({ code: 'RATE_LIMITED' });
      await server.graphql(OPS.requestReset, { email: dave.email });
      const mail = await mailOf(dave.email, 'password_reset');
      expect((await server.graphql(OPS.reset, { token: mail.token, password: NEW_PASSWORD })).errors).toEqual([]);
      expect((await login(server, dave.email, NEW_PASSWORD)).errors).toEqual([]);
    });
  });

  describe(`bad mail tokens (${store})`, () => {
    it('spent, forged, truncated, of another kind, with control characters, huge: TOKEN_INVALID_OR_EXPIRED or the body limit, never a 500, nothing changed', async () => {
      const server = await gateway(store);
      const erin = await account(server);
      await server.graphql(OPS.requestReset, { email: erin.email });
      const good = (await mailOf(erin.email, 'password_reset')).token!;
      const verification = (await mailOf(erin.email, 'email_verification')).token!;
      const flipped = good.slice(0, -2) + (good.at(-2) === 'A' ? 'B' : 'A') + good.at(-1);
      const parts = good.split('.');
      const forgedSecret = [parts[0], parts[1], parts[2], 'A'.repeat(43), parts[4]].join('.');
      const bad = [flipped, forgedSecret, good.slice(0, -5), good.slice(0, 30), `${good}\u0000`, `${good}\n`, good.replace('.', '\u0007'), verification, '', 'x'.repeat(60_000)];
      for (const token of bad) {
        const answer = await server.graphql(OPS.reset, { token, password: NEW_PASSWORD });
        expect(answer.status, JSON.stringify(token.slice(0, 40))).toBeLessThan(500);
        expect(errorOf(answer), JSON.stringify(token.slice(0, 40))).toEqual({ code: 'BAD_USER_INPUT', reason: 'TOKEN_INVALID_OR_EXPIRED' });
      }
      // 1 MB: the body limit answers before any resolver, with a contract code.
      const huge = await server.graphql(OPS.reset, { token: 'x'.repeat(1024 * 1024), password: NEW_PASSWORD });
      expect(huge.status).toBe(413);
      expect(errorOf(huge)).toMatchObject({ code: 'BAD_USER_INPUT' });
      // Nothing changed: the session lives, the password is the old one, and the good token still works.
      expect((await server.graphql(OPS.me, {}, bearer(erin.accessToken))).data?.me?.id).toBe(erin.id);
      expect((await login(server, erin.email)).errors).toEqual([]);
      expect((await server.graphql(OPS.reset, { token: good, password: NEW_PASSWORD })).errors).toEqual([]);
    }, 30_000);

    it('an expired token (PASSWORD_RESET_TTL, by the gateway clock) is refused', async () => {
      const clock = new ManualClock(Date.now());
      const server = await gateway(store, { PASSWORD_RESET_TTL: '30m' }, clock);
      const frank = await account(server);
      await server.graphql(OPS.requestReset, { email: frank.email });
      const mail = await mailOf(frank.email, 'password_reset');
      clock.advance(31 * 60_000);
      expect(errorOf(await server.graphql(OPS.reset, { token: mail.token, password: NEW_PASSWORD }))).toMatchObject({ reason: 'TOKEN_INVALID_OR_EXPIRED' });
    });

    it('two concurrent resets with one token: one new session, one refusal', async () => {
      const server = await gateway(store);
      const gina = await account(server);
      await server.graphql(OPS.requestReset, { email: gina.email });
      const mail = await mailOf(gina.email, 'password_reset');
      const answers = await Promise.all([1, 2].map((i) => server.graphql(OPS.reset, { token: mail.token, password: `${NEW_PASSWORD} ${i}` })));
      expect(answers.filter((a) => a.errors.length === 0)).toHaveLength(1);
      expect(answers.filter((a) => a.errors[0]?.extensions.reason === 'TOKEN_INVALID_OR_EXPIRED')).toHaveLength(1);
    });
  });

  describe(`email verification (${store})`, () => {
    it('optional (default): a mail at signup; verifyEmail marks the address verified; the token works once; a refresh carries email_verified', async () => {
      const server = await gateway(store);
      const hank = await account(server);
      expect((await server.graphql(OPS.me, {}, bearer(hank.accessToken))).data?.me).toMatchObject({ emailVerified: false });
      const mail = await mailOf(hank.email, 'email_verification');
      expect(mail.link).toContain('/verify-email?token=');
      expect((await server.graphql(OPS.verify, { token: mail.token })).data?.verifyEmail).toEqual({ id: hank.id, email: hank.email, emailVerified: true });
      expect(errorOf(await server.graphql(OPS.verify, { token: mail.token }))).toMatchObject({ reason: 'TOKEN_INVALID_OR_EXPIRED' });
      const refreshed = await server.graphql(OPS.refresh, { t: hank.refreshToken });
      const claims = JSON.parse(Buffer.from(refreshed.data!.refreshToken.accessToken.split('.')[1], 'base64url').toString());
      expect(claims).toMatchObject({ email_verified: true, amr: ['pwd'], acr: 'aal1' });
      expect(typeof claims.auth_time).toBe('number');
      // Verified already: a request sends nothing more.
      expect((await server.graphql(OPS.requestVerification, {}, bearer(refreshed.data!.refreshToken.accessToken))).data).toEqual({ requestEmailVerification: true });
    });

    it('requestEmailVerification resends; only the newest link works', async () => {
      const server = await gateway(store);
      const ivy = await account(server);
      const first = await mailOf(ivy.email, 'email_verification');
      expect((await server.graphql(OPS.requestVerification, {}, bearer(ivy.accessToken))).data).toEqual({ requestEmailVerification: true });
      const second = await mailOf(ivy.email, 'email_verification');
      expect(errorOf(await server.graphql(OPS.verify, { token: first.token }))).toMatchObject({ reason: 'TOKEN_INVALID_OR_EXPIRED' });
      expect((await server.graphql(OPS.verify, { token: second.token })).errors).toEqual([]);
    });

    it('off: no mail at signup', async () => {
      const server = await gateway(store, { EMAIL_VERIFICATION: 'off' });
      const jack = await account(server);
      await server.graphql(OPS.requestReset, { email: jack.email });
      await mailOf(jack.email, 'password_reset');
      expect(await mailsOf(jack.email, 'email_verification')).toEqual([]);
    });

    it('required: an unverified user signs in and may use me, sessions and the account mutations; anything else is FORBIDDEN EMAIL_NOT_VERIFIED until verified', async () => {
      const server = await gateway(store, { EMAIL_VERIFICATION: 'required' });
      const kim = await account(server);
      const auth = bearer(kim.accessToken);
      expect((await server.graphql(OPS.me, {}, auth)).data?.me?.id).toBe(kim.id);
      expect((await server.graphql('{ sessions { id } }', {}, auth)).errors).toEqual([]);
      const events = await server.graphql('{ securityEvents { nodes { type } } }', {}, auth);
      expect(errorOf(events)).toEqual({ code: 'FORBIDDEN', reason: 'EMAIL_NOT_VERIFIED' });
      const mail = await mailOf(kim.email, 'email_verification');
      expect((await server.graphql(OPS.verify, { token: mail.token })).errors).toEqual([]);
      const refreshed = await server.graphql(OPS.refresh, { t: kim.refreshToken });
      expect((await server.graphql('{ securityEvents { nodes { type } } }', {}, bearer(refreshed.data!.refreshToken.accessToken))).errors).toEqual([]);
    });
  });

  describe(`fresh authentication, password and email change (${store})`, () => {
    it('changePassword needs a recent auth_time (STEP_UP_REQUIRED with maxAge); reauthenticate renews it in the same session; the other sessions end', async () => {
      const clock = new ManualClock(Date.now());
      const server = await gateway(store, {}, clock);
      const lena = await account(server);
      const other = (await login(server, lena.email)).data!.login;
      clock.advance(6 * 60_000);
      expect(errorOf(await server.graphql(OPS.changePassword, { password: NEW_PASSWORD }, bearer(lena.accessToken)))).toEqual({
        code: 'FORBIDDEN',
        reason: 'STEP_UP_REQUIRED',
        maxAge: 300,
      });
      expect(errorOf(await server.graphql(OPS.reauth, { password: 'not my password' }, bearer(lena.accessToken)))).toMatchObject({ reason: 'INVALID_CREDENTIALS' });
      const reauth = await server.graphql(OPS.reauth, { password: TEST_PASSWORD }, bearer(lena.accessToken));
      expect(reauth.errors).toEqual([]);
      const fresh = reauth.data!.reauthenticate;
      expect(fresh.session.id).toBe(lena.sessionId);
      const claims = JSON.parse(Buffer.from(fresh.accessToken.split('.')[1], 'base64url').toString());
      expect(claims.auth_time).toBe(Math.floor(clock.now() / 1000));
      expect(claims.sid).toBe(lena.sessionId);
      expect((await server.graphql(OPS.changePassword, { password: NEW_PASSWORD }, bearer(fresh.accessToken))).data).toEqual({ changePassword: true });
      // This session lives on, the other one is over; the owner hears of the change.
      expect((await server.graphql(OPS.me, {}, bearer(fresh.accessToken))).data?.me?.id).toBe(lena.id);
      expect(errorOf(await server.graphql(OPS.me, {}, bearer(other.accessToken)))).toMatchObject({ reason: 'SESSION_REVOKED' });
      await mailOf(lena.email, 'password_changed');
      expect((await login(server, lena.email, NEW_PASSWORD)).errors).toEqual([]);
      // The new refresh token works; the one held before the re-authentication does not.
      expect((await server.graphql(OPS.refresh, { t: fresh.refreshToken })).errors).toEqual([]);
      expect(errorOf(await server.graphql(OPS.refresh, { t: lena.refreshToken }))).toMatchObject({ code: 'UNAUTHENTICATED' });
    });

    it('email change: the link goes to the new address, a notice to the old one; confirming moves the account', async () => {
      const server = await gateway(store);
      const max = await account(server);
      const target = uniqueEmail();
      expect((await server.graphql(OPS.requestEmailChange, { email: target }, bearer(max.accessToken))).data).toEqual({ requestEmailChange: true });
      const link = await mailOf(target, 'email_change');
      const notice = await mailOf(max.email, 'email_change_notice');
      expect(notice.text).toContain(target);
      expect(notice.link).toBeNull();
      expect((await server.graphql(OPS.confirmEmailChange, { token: link.token })).data?.confirmEmailChange).toEqual({ id: max.id, email: target, emailVerified: true });
      expect((await login(server, target)).errors).toEqual([]);
      expect(errorOf(await login(server, max.email))).toMatchObject({ reason: 'INVALID_CREDENTIALS' });
      expect(errorOf(await server.graphql(OPS.confirmEmailChange, { token: link.token }))).toMatchObject({ reason: 'TOKEN_INVALID_OR_EXPIRED' });
    });

    it("an address another account has: the same answer, the old address's notice, and no mail to the other account", async () => {
      const server = await gateway(store);
      const ned = await account(server);
      const owner = await account(server);
      expect((await server.graphql(OPS.requestEmailChange, { email: owner.email }, bearer(ned.accessToken))).data).toEqual({ requestEmailChange: true });
      await mailOf(ned.email, 'email_change_notice');
      expect(await mailsOf(owner.email, 'email_change')).toEqual([]);
    });

    it('deleteAccount: fresh auth, then the account and its sessions are gone and the email may sign up again', async () => {
      const clock = new ManualClock(Date.now());
      const server = await gateway(store, {}, clock);
      const olga = await account(server);
      clock.advance(10 * 60_000);
      expect(errorOf(await server.graphql(OPS.deleteAccount, {}, bearer(olga.accessToken)))).toMatchObject({ reason: 'STEP_UP_REQUIRED' });
      const fresh = (await server.graphql(OPS.reauth, { password: TEST_PASSWORD }, bearer(olga.accessToken))).data!.reauthenticate;
      expect((await server.graphql(OPS.deleteAccount, {}, bearer(fresh.accessToken))).data).toEqual({ deleteAccount: true });
      expect(errorOf(await server.graphql(OPS.me, {}, bearer(fresh.accessToken)))).toMatchObject({ code: 'UNAUTHENTICATED' });
      expect(errorOf(await login(server, olga.email))).toMatchObject({ reason: 'INVALID_CREDENTIALS' });
      const again = await account(server, olga.email);
      expect(again.id).not.toBe(olga.id);
    });

    it('NOTIFY_NEW_SIGN_IN=true: a password login mails a new_sign_in notice', async () => {
      const server = await gateway(store, { NOTIFY_NEW_SIGN_IN: 'true' });
      const pia = await account(server);
      await login(server, pia.email);
      const notice = await mailOf(pia.email, 'new_sign_in');
      expect(notice.link).toBeNull();
    });
  });
}
