import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { bearer, createTestServer, LOGIN, signUp, TEST_PASSWORD, type TestServer, uniqueEmail } from '../helpers/testServer.js';
import { CONFIRM, ENROLL, enrollTotp, FACTORS, failure, REMOVE, totpAt, VERIFY } from './support.js';

const STEP = 30_000;

for (const kind of ['redis', 'memory'] as const) {
  describe(`TOTP and recovery codes (${kind} store)`, () => {
    // Set a little after a step begins, so "the next step" is always 30 s ahead.
    const clock = new ManualClock(Math.floor(Date.now() / STEP) * STEP + 1_000);
    let server: TestServer;

    beforeAll(async () => {
      server = await createTestServer({ store: kind, clock, env: { LOGIN_MAX_FAILURES: '6' } });
    });
    afterAll(() => server.close());

    async function account() {
      const email = uniqueEmail();
      const signed = await signUp(server, email);
      const totp = await enrollTotp(server, signed.accessToken, clock.now());
      return { email, userId: signed.user.id as string, accessToken: signed.accessToken as string, ...totp };
    }

    async function mfaLogin(email: string) {
      const answer = await server.graphql(LOGIN, { email, password: TEST_PASSWORD });
      expect(answer.data).toBeNull();
      expect(failure(answer)).toEqual({ code: 'UNAUTHENTICATED', reason: 'MFA_REQUIRED' });
      return answer.errors[0]!.extensions as { mfaToken: string; factors: string[] };
    }

    it('enrols with a secret, an otpauth:// URI and an SVG QR code, activated by the first code', async () => {
      const signed = await signUp(server);
      const enrolled = await server.graphql(ENROLL, {}, bearer(signed.accessToken));
      expect(enrolled.errors).toEqual([]);
      const { factorId, secret, otpauthUri, qrCodeSvg } = enrolled.data!.enrollTotp;
      expect(secret).toMatch(/^[A-Z2-7]{32}$/);
      const uri = new URL(otpauthUri);
      expect(uri.protocol).toBe('otpauth:');
      expect(uri.host).toBe('totp');
      expect(Object.fromEntries(uri.searchParams)).toMatchObject({ secret, algorithm: 'SHA1', digits: '6', period: '30' });
      expect(decodeURIComponent(uri.pathname)).toContain(signed.user.email);
      expect(qrCodeSvg).toMatch(/^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
      // Not active before its first code: a login needs no second factor yet.
      expect((await server.graphql(FACTORS, {}, bearer(signed.accessToken))).data!.factors).toEqual([]);

      const wrong = await server.graphql(CONFIRM, { id: factorId, code: totpAt(secret, clock.now(), 5) }, bearer(signed.accessToken));
      expect(failure(wrong)).toEqual({ code: 'UNAUTHENTICATED', reason: 'MFA_CODE_INVALID' });
      const malformed = await server.graphql(CONFIRM, { id: factorId, code: 'abc' }, bearer(signed.accessToken));
      expect(failure(malformed)).toEqual({ code: 'BAD_USER_INPUT', reason: 'MFA_CODE_MALFORMED' });
      const unknown = await server.graphql(CONFIRM, { id: 'nope', code: '123456' }, bearer(signed.accessToken));
      expect(failure(unknown)).toEqual({ code: 'BAD_USER_INPUT', reason: 'FACTOR_NOT_FOUND' });

      const confirmed = await server.graphql(CONFIRM, { id: factorId, code: totpAt(secret, clock.now()) }, bearer(signed.accessToken));
      expect(confirmed.errors).toEqual([]);
      const codes = confirmed.data!.confirmTotp as string[];
      expect(codes).toHaveLength(10);
      expect(new Set(codes).size).toBe(10);
      for (const code of codes) expect(code).toMatch(/^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
      const factors = (await server.graphql(FACTORS, {}, bearer(signed.accessToken))).data!.factors;
      expect(factors).toEqual([{ id: factorId, kind: 'totp', name: null, createdAt: expect.any(String), lastUsedAt: null }]);
      // Confirmed once; the enrolment is gone.
      const again = await server.graphql(CONFIRM, { id: factorId, code: totpAt(secret, clock.now(), 1) }, bearer(signed.accessToken));
      expect(failure(again)).toEqual({ code: 'BAD_USER_INPUT', reason: 'FACTOR_NOT_FOUND' });
    });

    it('login answers MFA_REQUIRED with an mfaToken and the factors, and starts no session', async () => {
      const { email, userId } = await account();
      const before = await server.store.listSessions(userId, clock.now());
      const { mfaToken, factors } = await mfaLogin(email);
      expect(mfaToken).toMatch(/^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
      expect(factors).toEqual(['totp', 'recovery_code']);
      expect(await server.store.listSessions(userId, clock.now())).toHaveLength(before.length);
    });

    it('verifyMfa with the next code signs in; the code is refused again, as is the one that activated it', async () => {
      const { email, secret, userId } = await account();
      const first = await mfaLogin(email);
      // The code that confirmed the enrolment is spent.
      const spent = await server.graphql(VERIFY, { t: first.mfaToken, code: totpAt(secret, clock.now()) });
      expect(failure(spent)).toEqual({ code: 'UNAUTHENTICATED', reason: 'MFA_CODE_INVALID' });
      clock.advance(STEP);
      const code = totpAt(secret, clock.now());
      const ok = await server.graphql(VERIFY, { t: first.mfaToken, code });
      expect(ok.errors).toEqual([]);
      expect(ok.data!.verifyMfa.user.id).toBe(userId);
      const me = await server.graphql('{ me { id } factors { kind lastUsedAt } }', {}, bearer(ok.data!.verifyMfa.accessToken));
      expect(me.data!.me.id).toBe(userId);
      expect(me.data!.factors[0].lastUsedAt).toBe(new Date(clock.now()).toISOString());

      // The ticket is spent …
      const replayedToken = await server.graphql(VERIFY, { t: first.mfaToken, code: totpAt(secret, clock.now(), 1) });
      expect(failure(replayedToken)).toEqual({ code: 'UNAUTHENTICATED', reason: 'MFA_TOKEN_INVALID' });
      // … and the code, on a new ticket.
      const second = await mfaLogin(email);
      const replayedCode = await server.graphql(VERIFY, { t: second.mfaToken, code });
      expect(failure(replayedCode)).toEqual({ code: 'UNAUTHENTICATED', reason: 'MFA_CODE_INVALID' });
      // One step of drift either way is accepted; two are not.
      expect(failure(await server.graphql(VERIFY, { t: second.mfaToken, code: totpAt(secret, clock.now(), 2) }))).toEqual({
        code: 'UNAUTHENTICATED',
        reason: 'MFA_CODE_INVALID',
      });
      const drifted = await server.graphql(VERIFY, { t: second.mfaToken, code: totpAt(secret, clock.now(), 1) });
      expect(drifted.errors).toEqual([]);
    });

    it('a recovery code signs in once', async () => {
      const { email, recoveryCodes } = await account();
      const { mfaToken } = await mfaLogin(email);
      // Typed without dashes, in lower case: the same code.
      const ok = await server.graphql(VERIFY, { t: mfaToken, code: recoveryCodes[3]!.replace(/-/g, '').toLowerCase() });
      expect(ok.errors).toEqual([]);
      const again = await mfaLogin(email);
      const spent = await server.graphql(VERIFY, { t: again.mfaToken, code: recoveryCodes[3]! });
      expect(failure(spent)).toEqual({ code: 'UNAUTHENTICATED', reason: 'MFA_CODE_INVALID' });
      const other = await server.graphql(VERIFY, { t: again.mfaToken, code: recoveryCodes[4]! });
      expect(other.errors).toEqual([]);
    });

    it('refuses an mfaToken that expired, was tried a sixth time, is forged or is another user’s', async () => {
      const a = await account();
      const b = await account();
      const sessionsOf = async (userId: string) => (await server.store.listSessions(userId, clock.now())).length;
      const [aBefore, bBefore] = [await sessionsOf(a.userId), await sessionsOf(b.userId)];
      const expiring = await mfaLogin(a.email);
      clock.advance(5 * 60_000);
      const expired = await server.graphql(VERIFY, { t: expiring.mfaToken, code: totpAt(a.secret, clock.now()) });
      expect(failure(expired)).toEqual({ code: 'UNAUTHENTICATED', reason: 'MFA_TOKEN_INVALID' });

      const tried = await mfaLogin(a.email);
      for (let i = 0; i < 5; i++) {
        const wrong = await server.graphql(VERIFY, { t: tried.mfaToken, code: totpAt(a.secret, clock.now(), 10 + i) });
        expect(failure(wrong)).toEqual({ code: 'UNAUTHENTICATED', reason: 'MFA_CODE_INVALID' });
      }
      const sixth = await server.graphql(VERIFY, { t: tried.mfaToken, code: totpAt(a.secret, clock.now()) });
      expect(failure(sixth)).toEqual({ code: 'UNAUTHENTICATED', reason: 'MFA_TOKEN_INVALID' });

      // a's ticket secret under b's id, and b's code: not b's ticket.
      const ticket = await mfaLogin(a.email);
      const swapped = `${b.userId}.${ticket.mfaToken.split('.')[1]}`;
      const stolen = await server.graphql(VERIFY, { t: swapped, code: totpAt(b.secret, clock.now()) });
      expect(failure(stolen)).toEqual({ code: 'UNAUTHENTICATED', reason: 'MFA_TOKEN_INVALID' });
      for (const forged of ['', 'x', `${a.userId}.${'A'.repeat(43)}`, 'a'.repeat(10_000)]) {
        const answer = await server.graphql(VERIFY, { t: forged, code: totpAt(a.secret, clock.now()) });
        expect(failure(answer)).toEqual({ code: 'UNAUTHENTICATED', reason: 'MFA_TOKEN_INVALID' });
      }
      for (const code of ['12345', '1234567', 'abcdef', '', 'x'.repeat(1_000)]) {
        const answer = await server.graphql(VERIFY, { t: ticket.mfaToken, code });
        expect(failure(answer)).toEqual({ code: 'BAD_USER_INPUT', reason: 'MFA_CODE_MALFORMED' });
      }
      // None of that started a session.
      expect([await sessionsOf(a.userId), await sessionsOf(b.userId)]).toEqual([aBefore, bBefore]);
      // The ticket survived all of that (malformed input counts no attempt) and still works.
      clock.advance(STEP);
      expect((await server.graphql(VERIFY, { t: ticket.mfaToken, code: totpAt(a.secret, clock.now()) })).errors).toEqual([]);
    });

    it('failed codes count toward the account’s login limit; a correct password does not reset it', async () => {
      const { email, secret } = await account();
      // LOGIN_MAX_FAILURES=6: two wrong passwords …
      for (let i = 0; i < 2; i++) expect(failure(await server.graphql(LOGIN, { email, password: 'wrong password' })).reason).toBe('INVALID_CREDENTIALS');
      // … the right one (MFA_REQUIRED, nothing reset), four wrong codes: six failures.
      const { mfaToken } = await mfaLogin(email);
      for (let i = 0; i < 4; i++) {
        expect(failure(await server.graphql(VERIFY, { t: mfaToken, code: totpAt(secret, clock.now(), 20 + i) })).reason).toBe('MFA_CODE_INVALID');
      }
      const refused = await server.graphql(LOGIN, { email, password: TEST_PASSWORD });
      expect(failure(refused).code).toBe('RATE_LIMITED');
      const code = await server.graphql(VERIFY, { t: mfaToken, code: totpAt(secret, clock.now(), 1) });
      expect(failure(code).code).toBe('RATE_LIMITED');
    });

    it('records mfa.enrolled, mfa.failed and mfa.removed; removing needs the factor to be the caller’s', async () => {
      const a = await account();
      const other = await account();
      const { mfaToken } = await mfaLogin(a.email);
      await server.graphql(VERIFY, { t: mfaToken, code: totpAt(a.secret, clock.now(), 7) });
      const notMine = await server.graphql(REMOVE, { id: other.factorId }, bearer(a.accessToken));
      expect(notMine.data).toEqual({ removeFactor: false });
      const removed = await server.graphql(REMOVE, { id: a.factorId }, bearer(a.accessToken));
      expect(removed.data).toEqual({ removeFactor: true });
      const events = await server.graphql('{ securityEvents(first: 20) { nodes { type details } } }', {}, bearer(a.accessToken));
      const mfa = (events.data!.securityEvents.nodes as { type: string; details: Record<string, unknown> }[]).filter((e) => e.type.startsWith('mfa.'));
      expect(mfa.map((e) => [e.type, e.details.kind ?? e.details.factor])).toEqual([
        ['mfa.removed', 'totp'],
        ['mfa.failed', 'totp'],
        ['mfa.enrolled', 'totp'],
      ]);
      // No factor: a password is enough again.
      const login = await server.graphql(LOGIN, { email: a.email, password: TEST_PASSWORD });
      expect(login.errors).toEqual([]);
    });
  });
}
