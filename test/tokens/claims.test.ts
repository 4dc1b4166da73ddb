import { describe, expect, it } from 'vitest';
import { ACCESS_TOKEN_CLAIMS } from '../../src/tokens/accessTokens.js';
import { type ClaimSetSpec, CONTEXT_TOKEN_CLAIMS, validateClaimSet } from '@tessera-gateway/subgraph/claims';

/** One validator, a spec per token type: the rules it applies, independent of any signature. */
const NOW = 1_800_000_000;
const OPTIONS = { issuer: 'https://auth.example.test', audience: 'orders', nowSec: NOW, clockToleranceSec: 5 };
const INVALID = { ok: false, reason: 'TOKEN_INVALID' };
const EXPIRED = { ok: false, reason: 'TOKEN_EXPIRED' };

const context = (change: Record<string, unknown> = {}) => ({
  iss: OPTIONS.issuer,
  aud: 'orders',
  sub: 'user-1',
  sid: 'session-1',
  roles: ['user'],
  scope: 'user',
  iat: NOW,
  exp: NOW + 60,
  ...change,
});

describe('validateClaimSet', () => {
  it('returns the registered claims and the spec’s, nothing else', () => {
    expect(validateClaimSet(CONTEXT_TOKEN_CLAIMS, { ...context(), extra: 'dropped' }, OPTIONS)).toEqual({
      ok: true,
      claims: context(),
    });
  });

  it('requires every claim of the spec but the optional ones', () => {
    for (const claim of ['iss', 'aud', 'iat', 'exp', 'sub', 'sid', 'roles', 'scope']) {
      const claims: Record<string, unknown> = context();
      delete claims[claim];
      expect(validateClaimSet(CONTEXT_TOKEN_CLAIMS, claims, OPTIONS), claim).toEqual(INVALID);
    }
    const access = { ...context({ aud: 'tessera', exp: NOW + 900 }), jti: 'jti-1' };
    const accessOptions = { ...OPTIONS, audience: 'tessera' };
    expect(validateClaimSet(ACCESS_TOKEN_CLAIMS, access, accessOptions).ok).toBe(true);
    expect(validateClaimSet(ACCESS_TOKEN_CLAIMS, { ...access, client_id: 'web' }, accessOptions)).toMatchObject({
      ok: true,
      claims: { client_id: 'web' },
    });
    const { jti: _jti, ...withoutJti } = access;
    expect(validateClaimSet(ACCESS_TOKEN_CLAIMS, withoutJti, accessOptions)).toEqual(INVALID);
  });

  it('says expired only for a token that is otherwise for us: before the claim types are looked at, after iss and aud', () => {
    const old = { iat: NOW - 3600, exp: NOW - 3000 };
    expect(validateClaimSet(CONTEXT_TOKEN_CLAIMS, context({ ...old, roles: 'admin' }), OPTIONS)).toEqual(EXPIRED);
    expect(validateClaimSet(CONTEXT_TOKEN_CLAIMS, context({ ...old, aud: 'billing' }), OPTIONS)).toEqual(INVALID);
    expect(validateClaimSet(CONTEXT_TOKEN_CLAIMS, context({ ...old, iss: 'https://evil.example' }), OPTIONS)).toEqual(INVALID);
  });

  it('with a maximum age: an older iat (beyond the tolerance) is expired, a longer life invalid; without one, neither is checked', () => {
    const aged = context({ iat: NOW - 66, exp: NOW + 10 });
    expect(validateClaimSet(CONTEXT_TOKEN_CLAIMS, aged, OPTIONS)).toEqual(EXPIRED);
    expect(validateClaimSet(CONTEXT_TOKEN_CLAIMS, context({ iat: NOW - 64, exp: NOW - 4 }), OPTIONS).ok).toBe(true);
    expect(validateClaimSet(CONTEXT_TOKEN_CLAIMS, context({ exp: NOW + 61 }), OPTIONS)).toEqual(INVALID);
    const unbounded: ClaimSetSpec = { ...CONTEXT_TOKEN_CLAIMS };
    delete unbounded.maxAgeSec;
    expect(validateClaimSet(unbounded, aged, OPTIONS).ok).toBe(true);
    expect(validateClaimSet(unbounded, context({ exp: NOW + 3600 }), OPTIONS).ok).toBe(true);
  });

  it('refuses iat or nbf in the future beyond the tolerance, and times that are not finite', () => {
    expect(validateClaimSet(CONTEXT_TOKEN_CLAIMS, context({ iat: NOW + 6 }), OPTIONS)).toEqual(INVALID);
    expect(validateClaimSet(CONTEXT_TOKEN_CLAIMS, context({ iat: NOW + 5 }), OPTIONS).ok).toBe(true);
    expect(validateClaimSet(CONTEXT_TOKEN_CLAIMS, context({ nbf: NOW + 6 }), OPTIONS)).toEqual(INVALID);
    expect(validateClaimSet(CONTEXT_TOKEN_CLAIMS, context({ nbf: NOW + 5 }), OPTIONS).ok).toBe(true);
    expect(validateClaimSet(ACCESS_TOKEN_CLAIMS, { ...context({ exp: Infinity }), jti: 'j' }, OPTIONS)).toEqual(INVALID);
  });
});
