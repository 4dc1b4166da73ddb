import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { bearer, LOGIN, signUp, TEST_PASSWORD, uniqueEmail } from '../helpers/testServer.js';
import { createMeasuredServer, type MeasuredServer, sample } from '../observability/support.js';
import { CONFIRM, ENROLL, enrollTotp, failure, REMOVE, totpAt, VERIFY } from './support.js';

const STEP = 30_000;

describe('second factors need fresh authentication, and are counted', () => {
  const clock = new ManualClock(Math.floor(Date.now() / STEP) * STEP + 1_000);
  let server: MeasuredServer;

  beforeAll(async () => {
    server = await createMeasuredServer({ store: 'memory', clock });
  });
  afterAll(() => server?.close());

  it('enrolling, removing and regenerating recovery codes answer STEP_UP_REQUIRED after FRESH_AUTH_MAX_AGE; confirming does not', async () => {
    const signed = await signUp(server);
    const token = signed.accessToken as string;
    const { factorId } = await enrollTotp(server, token, clock.now());
    const pending = (await server.graphql(ENROLL, {}, bearer(token))).data!.enrollTotp as { factorId: string; secret: string };
    clock.advance(5 * 60_000 + 1_000);
    for (const [query, variables] of [
      [ENROLL, {}],
      [REMOVE, { id: factorId }],
      ['mutation { regenerateRecoveryCodes }', {}],
      ['mutation { startPasskeyRegistration }', {}],
    ] as const) {
      const answer = await server.graphql(query, variables, bearer(token));
      expect(answer.errors[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', reason: 'STEP_UP_REQUIRED', maxAge: 300 });
    }
    // An enrolment started while fresh can still be confirmed (within its 15 minutes).
    const confirmed = await server.graphql(CONFIRM, { id: pending.factorId, code: totpAt(pending.secret, clock.now()) }, bearer(token));
    expect(confirmed.errors).toEqual([]);
    // Nothing was removed.
    expect((await server.graphql('{ factors { id } }', {}, bearer(token))).data!.factors).toHaveLength(2);
  });

  it('reauthenticate with a password, a code, or both: a fresh auth_time in the same session; both are aal2', async () => {
    const REAUTH = `mutation($p: String, $c: String) { reauthenticate(password: $p, code: $c) { accessToken session { id } } }`;
    const email = uniqueEmail();
    const signed = await signUp(server, email);
    const { secret, recoveryCodes } = await enrollTotp(server, signed.accessToken, clock.now());
    clock.advance(10 * 60_000);
    const claims = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
    const stale = await server.graphql(ENROLL, {}, bearer(signed.accessToken));
    expect(stale.errors[0]?.extensions).toMatchObject({ reason: 'STEP_UP_REQUIRED' });

    const both = await server.graphql(REAUTH, { p: TEST_PASSWORD, c: totpAt(secret, clock.now()) }, bearer(signed.accessToken));
    expect(both.errors).toEqual([]);
    expect(both.data!.reauthenticate.session.id).toBe(signed.session.id);
    const fresh = both.data!.reauthenticate.accessToken as string;
    expect(claims(fresh)).toMatchObject({ amr: ['pwd', 'otp', 'mfa'], acr: 'aal2', auth_time: Math.floor(clock.now() / 1000) });
    expect((await server.graphql(ENROLL, {}, bearer(fresh))).errors).toEqual([]);

    // The same code again is spent; a recovery code alone is one factor (aal1).
    const replay = await server.graphql(REAUTH, { c: totpAt(secret, clock.now()) }, bearer(fresh));
    expect(failure(replay)).toEqual({ code: 'UNAUTHENTICATED', reason: 'MFA_CODE_INVALID' });
    const code = await server.graphql(REAUTH, { c: recoveryCodes[0] }, bearer(fresh));
    expect(code.errors).toEqual([]);
    expect(claims(code.data!.reauthenticate.accessToken)).toMatchObject({ amr: ['otp'], acr: 'aal1' });
    // A wrong password spends no code; nothing at all is bad input.
    clock.advance(STEP);
    const wrong = await server.graphql(REAUTH, { p: 'wrong password', c: totpAt(secret, clock.now()) }, bearer(fresh));
    expect(failure(wrong).reason).toBe('INVALID_CREDENTIALS');
    expect((await server.graphql(REAUTH, { c: totpAt(secret, clock.now()) }, bearer(fresh))).errors).toEqual([]);
    expect(failure(await server.graphql(REAUTH, {}, bearer(fresh))).code).toBe('BAD_USER_INPUT');
  });

  it('counts logins that need a factor, and factor attempts by factor and outcome', async () => {
    const email = uniqueEmail();
    const signed = await signUp(server, email);
    const { secret } = await enrollTotp(server, signed.accessToken, clock.now());
    const before = await server.scrape();
    const login = await server.graphql(LOGIN, { email, password: TEST_PASSWORD });
    const { mfaToken } = login.errors[0]!.extensions as { mfaToken: string };
    expect(failure(await server.graphql(VERIFY, { t: mfaToken, code: totpAt(secret, clock.now(), 9) })).reason).toBe('MFA_CODE_INVALID');
    clock.advance(STEP);
    expect((await server.graphql(VERIFY, { t: mfaToken, code: totpAt(secret, clock.now()) })).errors).toEqual([]);
    const after = await server.scrape();
    const delta = (name: string, labels: Record<string, string>) => (sample(after, name, labels) ?? 0) - (sample(before, name, labels) ?? 0);
    expect(delta('tessera_logins_total', { outcome: 'mfa_required' })).toBe(1);
    expect(delta('tessera_logins_total', { outcome: 'success' })).toBe(1);
    expect(delta('tessera_mfa_attempts_total', { factor: 'totp', outcome: 'failure' })).toBe(1);
    expect(delta('tessera_mfa_attempts_total', { factor: 'totp', outcome: 'success' })).toBe(1);
  });
});

describe('WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS', () => {
  const error = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (caught) {
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as Error).message).not.toMatch(/\n/);
      return (caught as Error).message;
    }
    throw new Error('expected a ConfigError');
  };

  it('default to AUTH_ISSUER’s host and origin', () => {
    expect(loadConfig({}).factors).toEqual({ rpId: 'localhost', origins: ['http://localhost:4000'] });
    expect(loadConfig({ AUTH_ISSUER: 'https://auth.example.com/base' }).factors).toEqual({
      rpId: 'auth.example.com',
      origins: ['https://auth.example.com'],
    });
  });

  it('accept origins on the RP ID or its subdomains', () => {
    const env = { WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'https://example.com, https://app.example.com:8443' };
    expect(loadConfig(env).factors).toEqual({ rpId: 'example.com', origins: ['https://example.com', 'https://app.example.com:8443'] });
  });

  it('refuse what could never work, with one line naming the variable', () => {
    expect(error({ WEBAUTHN_RP_ID: 'https://example.com' })).toContain('WEBAUTHN_RP_ID');
    expect(error({ WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'https://evil.test' })).toContain('WEBAUTHN_ORIGINS');
    expect(error({ WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'https://notexample.com' })).toContain('WEBAUTHN_ORIGINS');
    expect(error({ WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'https://example.com/path' })).toContain('WEBAUTHN_ORIGINS');
    expect(error({ WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'ftp://example.com' })).toContain('WEBAUTHN_ORIGINS');
  });
});
