import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { newId } from '../../src/ids.js';
import type { AccessTokenClaims } from '../../src/tokens/types.js';
import { VerifiedTokenCache } from '../../src/tokens/verifiedTokenCache.js';
import { bearer, createTestServer, SIGNUP, type TestServer, uniqueEmail } from '../helpers/testServer.js';
import { TOLERANCE_SEC, nowSec, setup, signCompact, standardClaims, standardHeader } from './helpers.js';

const ISSUE = { userId: newId(), sessionId: newId(), roles: ['user'] };

function claimsAt(iat: number, exp = iat + 900): AccessTokenClaims {
  return { iss: 'https://issuer.test', aud: 'tessera', sub: newId(), sid: newId(), jti: newId(), iat, exp, roles: ['user'], scope: 'user' };
}

/** The same signature bytes, spelled with another last character (its unused low bits differ). */
function malleated(token: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(token.at(-1)!);
  // An Ed25519 signature is 64 bytes: 86 characters, the last carrying 2 bits and 4 unused ones.
  const twin = alphabet[(last & ~0b1111) | ((last + 1) & 0b1111)]!;
  return token.slice(0, -1) + twin;
}

describe('AccessTokenService with the verified-token cache', () => {
  it('answers a token verified before from the cache, with the same (frozen) claims', async () => {
    const { service } = await setup();
    const { token } = await service.issue(ISSUE);
    expect(service.cachedClaims(token)).toBeUndefined();
    const first = await service.verify(token);
    expect(first.ok).toBe(true);
    if (!first.ok) return;
    expect(service.cachedClaims(token)).toBe(first.claims);
    const second = await service.verify(token);
    expect(second).toEqual({ ok: true, claims: first.claims });
    expect(second.ok && second.claims).toBe(first.claims);
    expect(Object.isFrozen(first.claims) && Object.isFrozen(first.claims.roles)).toBe(true);
    expect(() => first.claims.roles.push('admin')).toThrow(TypeError);
    expect(service.cachedTokens).toBe(1);
  });

  it('never serves a token past exp + tolerance (the clock decides), and then says TOKEN_EXPIRED', async () => {
    const { clock, service } = await setup();
    const issued = await service.issue(ISSUE);
    expect((await service.verify(issued.token)).ok).toBe(true);
    clock.set(issued.expiresAt + (TOLERANCE_SEC - 1) * 1000);
    expect(service.cachedClaims(issued.token)).toBeDefined();
    clock.set(issued.expiresAt + TOLERANCE_SEC * 1000);
    expect(service.cachedClaims(issued.token)).toBeUndefined();
    expect(await service.verify(issued.token)).toEqual({ ok: false, reason: 'TOKEN_EXPIRED' });
    expect(service.cachedTokens).toBe(0);
  });

  it('does not serve a token once the clock steps back before its iat by more than the tolerance', async () => {
    const { clock, service } = await setup();
    const { token } = await service.issue(ISSUE);
    expect((await service.verify(token)).ok).toBe(true);
    clock.advance(-(TOLERANCE_SEC + 1) * 1000);
    expect(service.cachedClaims(token)).toBeUndefined();
    expect(await service.verify(token)).toEqual({ ok: false, reason: 'TOKEN_INVALID' });
  });

  it('caches no failure: a bad signature, an expired token, a refused claim are verified again each time', async () => {
    const { jwk, clock, service } = await setup();
    const { token } = await service.issue(ISSUE);
    const [header, payload, signature = ''] = token.split('.');
    const tampered = `${header}.${payload}.${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
    const expired = signCompact(jwk, standardHeader(jwk), standardClaims(nowSec(clock) - 3600));
    const wrongAudience = signCompact(jwk, standardHeader(jwk), { ...standardClaims(nowSec(clock)), aud: 'other' });
    for (let i = 0; i < 2; i++) {
      expect(await service.verify(tampered)).toEqual({ ok: false, reason: 'TOKEN_INVALID' });
      expect(await service.verify(expired)).toEqual({ ok: false, reason: 'TOKEN_EXPIRED' });
      expect(await service.verify(wrongAudience)).toEqual({ ok: false, reason: 'TOKEN_INVALID' });
    }
    expect(service.cachedTokens).toBe(0);
  });

  it('verifies but does not cache a token whose iat is ahead of the clock (within the tolerance)', async () => {
    const { jwk, clock, service } = await setup();
    const ahead = signCompact(jwk, standardHeader(jwk), standardClaims(nowSec(clock) + TOLERANCE_SEC));
    expect((await service.verify(ahead)).ok).toBe(true);
    expect(service.cachedClaims(ahead)).toBeUndefined();
    expect(service.cachedTokens).toBe(0);
  });

  it('never answers a token that differs in one character from the entry of another: it is verified on its own', async () => {
    const { service } = await setup('EdDSA');
    const { token } = await service.issue(ISSUE);
    expect((await service.verify(token)).ok).toBe(true);

    // Signature malleability: another spelling of the same signature bytes.
    const twin = malleated(token);
    expect(twin).not.toBe(token);
    expect(service.cachedClaims(twin)).toBeUndefined();
    expect((await service.verify(twin)).ok).toBe(true);
    expect(service.cachedTokens).toBe(2);

    // A change that breaks the signature is refused, though the original is cached.
    const last = token.at(-1) === 'A' ? 'Q' : 'A';
    const broken = `${token.slice(0, -2)}${token.at(-2) === 'A' ? 'B' : 'A'}${last}`;
    expect(service.cachedClaims(broken)).toBeUndefined();
    expect(await service.verify(broken)).toEqual({ ok: false, reason: 'TOKEN_INVALID' });
    expect(service.cachedTokens).toBe(2);
  });

  it('forgets a token on request (its session was revoked)', async () => {
    const { service } = await setup();
    const { token } = await service.issue(ISSUE);
    await service.verify(token);
    service.forget(token);
    expect(service.cachedClaims(token)).toBeUndefined();
    expect(service.cachedTokens).toBe(0);
  });

  it('caches nothing with verifiedCacheSize 0', async () => {
    const { keys, clock } = await setup();
    const { AccessTokenService } = await import('../../src/tokens/accessTokens.js');
    const service = new AccessTokenService({
      keys,
      issuer: 'https://auth.example.test',
      audience: 'tessera',
      clientId: 'tessera',
      ttlMs: 900_000,
      clockToleranceSec: TOLERANCE_SEC,
      clock,
      verifiedCacheSize: 0,
    });
    const { token } = await service.issue(ISSUE);
    expect((await service.verify(token)).ok).toBe(true);
    expect(service.cachedTokens).toBe(0);
  });
});

describe('VerifiedTokenCache', () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const now = () => Math.floor(clock.now() / 1000);

  it('holds at most maxEntries; a token hit since the hand last passed gets a second chance', () => {
    const cache = new VerifiedTokenCache({ maxEntries: 3, clock, clockToleranceSec: 5 });
    for (const token of ['a', 'b', 'c']) cache.set(token, claimsAt(now()));
    expect(cache.get('a')).toBeDefined();
    cache.set('d', claimsAt(now()));
    expect(cache.size).toBe(3);
    expect(cache.get('a')).toBeDefined();
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('c')).toBeDefined();
    expect(cache.get('d')).toBeDefined();
    for (let i = 0; i < 100; i++) cache.set(`t${i}`, claimsAt(now()));
    expect(cache.size).toBe(3);
  });

  it('evicts an expired entry first, even one that was hit', () => {
    const cache = new VerifiedTokenCache({ maxEntries: 2, clock, clockToleranceSec: 0 });
    cache.set('short', claimsAt(now(), now() + 10));
    cache.set('long', claimsAt(now()));
    cache.get('short');
    cache.get('long');
    clock.advance(11_000);
    cache.set('new', claimsAt(now()));
    expect(cache.size).toBe(2);
    expect(cache.get('long')).toBeDefined();
    expect(cache.get('new')).toBeDefined();
  });

  it('serves exactly while exp > now - tolerance and iat/nbf <= now + tolerance', () => {
    const cache = new VerifiedTokenCache({ maxEntries: 10, clock, clockToleranceSec: 5 });
    const start = now();
    cache.set('t', claimsAt(start, start + 60), start - 1);
    clock.set((start + 64) * 1000 + 999);
    expect(cache.get('t')).toBeDefined();
    clock.set((start + 65) * 1000);
    expect(cache.get('t')).toBeUndefined();
    expect(cache.size).toBe(0);

    clock.set(start * 1000);
    cache.set('u', claimsAt(start));
    clock.set((start - 5) * 1000);
    expect(cache.get('u')).toBeDefined();
    clock.set((start - 6) * 1000);
    expect(cache.get('u')).toBeUndefined();
  });

  it('does not keep a token whose iat or nbf is in the future, or that has expired', () => {
    const cache = new VerifiedTokenCache({ maxEntries: 10, clock, clockToleranceSec: 5 });
    cache.set('iat-ahead', claimsAt(now() + 1));
    cache.set('nbf-ahead', claimsAt(now()), now() + 1);
    cache.set('expired', claimsAt(now() - 100, now() - 5));
    expect(cache.size).toBe(0);
  });

  it('keys by the exact string', () => {
    const cache = new VerifiedTokenCache({ maxEntries: 10, clock, clockToleranceSec: 5 });
    cache.set('token', claimsAt(now()));
    expect(cache.get('token ')).toBeUndefined();
    expect(cache.get('Token')).toBeUndefined();
    expect(cache.get('token')).toBeDefined();
  });

  it('refuses a size that is not a whole number', () => {
    expect(() => new VerifiedTokenCache({ maxEntries: -1, clock, clockToleranceSec: 5 })).toThrow(RangeError);
    expect(() => new VerifiedTokenCache({ maxEntries: 1.5, clock, clockToleranceSec: 5 })).toThrow(RangeError);
  });
});

describe('a revoked session through the gateway', () => {
  const servers: TestServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  it('refuses a cached token of a revoked session with SESSION_REVOKED, and drops it from the cache', async () => {
    const server = await createTestServer({ store: 'memory' });
    servers.push(server);
    const signup = await server.graphql(SIGNUP, { email: uniqueEmail(), password: 'correct horse battery' });
    const token: string = signup.data!.signup.accessToken;
    for (let i = 0; i < 2; i++) {
      const me = await server.graphql('{ me { id } }', {}, bearer(token));
      expect(me.errors).toEqual([]);
    }
    expect(server.app.accessTokens.cachedClaims(token)).toBeDefined();

    const revoked = await server.graphql('mutation { revokeSession }', {}, bearer(token));
    expect(revoked.data).toEqual({ revokeSession: true });

    for (let i = 0; i < 2; i++) {
      const me = await server.graphql('{ me { id } }', {}, bearer(token));
      expect(me.data).toEqual({ me: null });
      expect(me.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'SESSION_REVOKED' });
      expect(server.app.accessTokens.cachedClaims(token)).toBeUndefined();
    }
  });
});
