import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import * as subgraphPackage from '@tessera-gateway/subgraph';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { createContextVerifier } from '../../src/subgraph/index.js';
import { CONTEXT_HEADER, CONTEXT_TOKEN_TYP, type ContextSubject, ContextTokenSigner } from '../../src/tokens/contextTokens.js';
import { keySetJson, parseKeySet } from '../../src/tokens/keys.js';
import type { SigningAlgorithm } from '../../src/tokens/types.js';
import { testKeySet } from '../helpers/keys.js';
import { GOLDEN } from '../tokens/helpers.js';

const ISSUER = 'https://auth.example.com';

function subject(clock: ManualClock, overrides: Partial<ContextSubject> = {}): ContextSubject {
  return {
    sub: 'user-1',
    sid: 'session-1',
    roles: ['user', 'admin'],
    scope: 'user admin orders:read',
    exp: Math.floor(clock.now() / 1000) + 900,
    ...overrides,
  };
}

// ES256 signatures are randomized: the same string twice means one signature, reused.
async function setup(options: { maxEntries?: number } = {}) {
  const clock = new ManualClock(Date.UTC(2026, 4, 1, 12, 0, 0));
  const keys = await testKeySet('ES256');
  const signer = new ContextTokenSigner({ keys, issuer: ISSUER, clock, ...options });
  return { clock, keys, signer };
}

describe('ContextTokenSigner', () => {
  it('signs with the active key: typ tessera-ctx+jwt, kid, iss, aud = the subgraph, exp 60 s ahead, sub/sid/roles/scope', async () => {
    const { clock, keys, signer } = await setup();
    const token = await signer.sign(subject(clock), 'orders');
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', kid: keys.active.kid, typ: 'tessera-ctx+jwt' });
    const iat = Math.floor(clock.now() / 1000);
    expect(decodeJwt(token)).toEqual({
      iss: ISSUER,
      aud: 'orders',
      sub: 'user-1',
      sid: 'session-1',
      roles: ['user', 'admin'],
      scope: 'user admin orders:read',
      iat,
      exp: iat + 60,
    });
  });

  it('never outlives the access token it speaks for', async () => {
    const { clock, signer } = await setup();
    const accessExp = Math.floor(clock.now() / 1000) + 20;
    const token = await signer.sign(subject(clock, { exp: accessExp }), 'orders');
    expect(decodeJwt(token).exp).toBe(accessExp);
  });

  it('reuses one signed context per (session, subgraph, claim set) until 10 s before its exp, across access tokens of the session', async () => {
    const { clock, signer } = await setup();
    const first = await signer.sign(subject(clock), 'orders');
    clock.advance(49_000); // 11 s left
    // Another access token of the same session (a refresh): same claims, later exp.
    expect(await signer.sign(subject(clock), 'orders')).toBe(first);
    clock.advance(1_000); // exactly 10 s left: signed again
    const second = await signer.sign(subject(clock), 'orders');
    expect(second).not.toBe(first);
    expect(decodeJwt(second).iat).toBe(decodeJwt(first).iat! + 50);
    clock.advance(30_000);
    expect(await signer.sign(subject(clock), 'orders')).toBe(second);
  });

  it('never hands out a cached context that ends after the presented access token', async () => {
    const { clock, signer } = await setup();
    const first = await signer.sign(subject(clock), 'orders'); // exp now + 60
    const shortLived = subject(clock, { exp: Math.floor(clock.now() / 1000) + 20 });
    const second = await signer.sign(shortLived, 'orders');
    expect(second).not.toBe(first);
    expect(decodeJwt(second).exp).toBe(shortLived.exp);
  });

  it('a cached context never outlives its exp: past it (or within the renew margin) a new one is signed', async () => {
    const { clock, signer } = await setup();
    const first = await signer.sign(subject(clock), 'orders');
    clock.advance(120_000);
    const later = await signer.sign(subject(clock), 'orders');
    expect(later).not.toBe(first);
    expect(decodeJwt(later).exp! * 1000).toBeGreaterThan(clock.now());
  });

  it('signs separately per subgraph, per session and per claim set', async () => {
    const { clock, signer } = await setup();
    const orders = await signer.sign(subject(clock), 'orders');
    const billing = await signer.sign(subject(clock), 'billing');
    const otherSession = await signer.sign(subject(clock, { sid: 'session-2' }), 'orders');
    const otherRoles = await signer.sign(subject(clock, { roles: ['user'] }), 'orders');
    const otherScope = await signer.sign(subject(clock, { scope: 'user' }), 'orders');
    expect(new Set([orders, billing, otherSession, otherRoles, otherScope]).size).toBe(5);
    expect(decodeJwt(billing).aud).toBe('billing');
    expect(decodeJwt(otherRoles).roles).toEqual(['user']);
    expect(decodeJwt(otherScope).scope).toBe('user');
  });

  it('drops a revoked session’s contexts at once: the next request of that session gets a new signature', async () => {
    const { clock, signer } = await setup();
    const revoked = await signer.sign(subject(clock), 'orders');
    const revokedBilling = await signer.sign(subject(clock), 'billing');
    const other = await signer.sign(subject(clock, { sid: 'session-2' }), 'orders');
    expect(signer.size).toBe(3);
    signer.dropSessions(['session-1']);
    expect(signer.size).toBe(1);
    const after = await signer.sign(subject(clock), 'orders');
    expect(after).not.toBe(revoked);
    expect(await signer.sign(subject(clock), 'billing')).not.toBe(revokedBilling);
    expect(await signer.sign(subject(clock, { sid: 'session-2' }), 'orders')).toBe(other);
  });

  it('concurrent requests of one caller share one signature', async () => {
    const { clock, signer } = await setup();
    const tokens = await Promise.all(Array.from({ length: 20 }, () => signer.sign(subject(clock), 'orders')));
    expect(new Set(tokens).size).toBe(1);
  });

  it('keeps at most maxEntries signed contexts, dropping the least recently used', async () => {
    const { clock, signer } = await setup({ maxEntries: 2 });
    const a = await signer.sign(subject(clock, { sid: 'a' }), 'orders');
    await signer.sign(subject(clock, { sid: 'b' }), 'orders');
    expect(await signer.sign(subject(clock, { sid: 'a' }), 'orders')).toBe(a); // a is now the most recent
    await signer.sign(subject(clock, { sid: 'c' }), 'orders'); // drops b
    expect(signer.size).toBe(2);
    expect(await signer.sign(subject(clock, { sid: 'a' }), 'orders')).toBe(a);
  });

  it('signs EdDSA byte for byte as jose’s SignJWT did, and as before the shared signer (signJws)', async () => {
    const clock = new ManualClock(Date.UTC(2026, 4, 1, 12, 0, 0));
    const keys = await testKeySet('EdDSA');
    const signer = new ContextTokenSigner({ keys, issuer: ISSUER, clock });
    const s = subject(clock);
    const iat = Math.floor(clock.now() / 1000);
    const viaJose = await new SignJWT({ sid: s.sid, roles: [...s.roles], scope: s.scope })
      .setProtectedHeader({ alg: keys.active.alg, kid: keys.active.kid, typ: 'tessera-ctx+jwt' })
      .setIssuer(ISSUER)
      .setAudience('orders')
      .setSubject(s.sub)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 60)
      .sign(keys.active.privateKey);
    expect(await signer.sign(s, 'orders')).toBe(viaJose);

    const goldenClock = new ManualClock(GOLDEN.nowMs);
    const golden = new ContextTokenSigner({ keys: await parseKeySet(keySetJson(GOLDEN.jwks), 'golden'), issuer: GOLDEN.issuer, clock: goldenClock });
    const goldenSubject = { sub: 'user-1', sid: 'session-1', roles: ['admin', 'user'], scope: 'admin user', exp: Math.floor(GOLDEN.nowMs / 1000) + 900 };
    expect(await golden.sign(goldenSubject, 'orders')).toBe(GOLDEN.contextToken);
  });

  it.each<SigningAlgorithm>(['EdDSA', 'ES256'])('a %s context token verifies with nothing but the published JWKS', async (alg) => {
    const clock = new ManualClock(Date.now());
    const keys = await testKeySet(alg);
    const token = await new ContextTokenSigner({ keys, issuer: ISSUER, clock }).sign(subject(clock), 'orders');
    const jwks = createLocalJWKSet(JSON.parse(JSON.stringify({ keys: keys.publicJwks() })));
    const { payload } = await jwtVerify(token, jwks, { issuer: ISSUER, audience: 'orders', typ: 'tessera-ctx+jwt', currentDate: new Date(clock.now()) });
    expect(payload).toMatchObject({ sub: 'user-1', sid: 'session-1' });
    // The subgraph package's verifier (through the gateway's re-export), given the same JWKS.
    const verifier = createContextVerifier({
      jwksUrl: 'https://auth.example.com/.well-known/jwks.json',
      issuer: ISSUER,
      audience: 'orders',
      clock,
      fetch: async () => Response.json({ keys: keys.publicJwks() }),
    });
    expect(await verifier.verify({ [CONTEXT_HEADER]: token })).toEqual({
      user: {
        id: 'user-1',
        roles: ['user', 'admin'],
        sessionId: 'session-1',
        scopes: ['user', 'admin', 'orders:read'],
        authTime: null,
        emailVerified: null,
        amr: [],
        acr: null,
      },
    });
  });

  it("passes the access token's authentication claims on to the subgraph (auth_time, email_verified, amr, acr)", async () => {
    const clock = new ManualClock(Date.now());
    const keys = await testKeySet('EdDSA');
    const authTime = Math.floor(clock.now() / 1000) - 42;
    const signer = new ContextTokenSigner({ keys, issuer: ISSUER, clock });
    const token = await signer.sign(subject(clock, { auth_time: authTime, email_verified: true, amr: ['pwd', 'otp', 'mfa'], acr: 'aal2' }), 'orders');
    const verifier = createContextVerifier({
      jwksUrl: 'https://auth.example.com/.well-known/jwks.json',
      issuer: ISSUER,
      audience: 'orders',
      clock,
      fetch: async () => Response.json({ keys: keys.publicJwks() }),
    });
    const { user } = await verifier.verify({ [CONTEXT_HEADER]: token });
    expect(user).toMatchObject({ authTime, emailVerified: true, amr: ['pwd', 'otp', 'mfa'], acr: 'aal2' });
    // A re-authentication (a new auth_time) is a new claim set: never the cached context of the old one.
    const renewed = await signer.sign(subject(clock, { auth_time: authTime + 40, email_verified: true, amr: ['pwd'], acr: 'aal1' }), 'orders');
    expect(renewed).not.toBe(token);
    expect((await verifier.verify({ [CONTEXT_HEADER]: renewed })).user).toMatchObject({ authTime: authTime + 40, acr: 'aal1' });
  });

  it('signs what the subgraph package reads: the same header name and typ on both sides', () => {
    expect(CONTEXT_HEADER).toBe(subgraphPackage.CONTEXT_HEADER);
    expect(CONTEXT_TOKEN_TYP).toBe(subgraphPackage.CONTEXT_TOKEN_TYP);
    expect(createContextVerifier).toBe(subgraphPackage.createContextVerifier);
  });

  it('refuses a lifetime over the contract’s 60 s', async () => {
    const keys = await testKeySet();
    expect(() => new ContextTokenSigner({ keys, issuer: ISSUER, clock: new ManualClock(), ttlMs: 61_000 })).toThrow(RangeError);
  });
});
