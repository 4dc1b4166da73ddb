import { createHmac, createPublicKey, type JsonWebKey } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify, createLocalJWKSet } from 'jose';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { newId } from '../../src/ids.js';
import { generateSigningJwk, keySetJson, parseKeySet, rotateKeySetJson } from '../../src/tokens/keys.js';
import type { SigningAlgorithm } from '../../src/tokens/types.js';
import {
  AUDIENCE,
  CLIENT_ID,
  GOLDEN,
  ISSUER,
  TOLERANCE_SEC,
  b64json,
  makeService,
  nowSec,
  setup,
  signCompact,
  standardClaims,
  standardHeader,
} from './helpers.js';

const USER = newId();
const SESSION = newId();
const ISSUE = { userId: USER, sessionId: SESSION, roles: ['admin', 'user'] };

describe('AccessTokenService.issue', () => {
  it.each<SigningAlgorithm>(['EdDSA', 'ES256'])('issues %s tokens that verify, with typ at+jwt and kid', async (alg) => {
    const { keys, service } = await setup(alg);
    const { token } = await service.issue(ISSUE);
    expect(decodeProtectedHeader(token)).toEqual({ alg, kid: keys.active.kid, typ: 'at+jwt' });
    expect((await service.verify(token)).ok).toBe(true);
  });

  it('uses EdDSA when no algorithm is given', async () => {
    const jwk = await generateSigningJwk();
    const keys = await parseKeySet(keySetJson([jwk]), 'test');
    const { token } = await makeService(keys, new ManualClock()).issue(ISSUE);
    expect(decodeProtectedHeader(token).alg).toBe('EdDSA');
  });

  it('carries every required claim with its type, times from the clock', async () => {
    const clock = new ManualClock(Date.UTC(2026, 2, 1, 12, 0, 0, 500));
    const { keys } = await setup();
    const service = makeService(keys, clock, () => 'jti-1');
    const issued = await service.issue({ ...ISSUE, scope: 'read write' });
    const iat = Math.floor(clock.now() / 1000);
    const expected = { iss: ISSUER, aud: AUDIENCE, sub: USER, sid: SESSION, jti: 'jti-1', iat, exp: iat + 900, client_id: CLIENT_ID };
    expect(decodeJwt(issued.token)).toEqual({ ...expected, roles: ['admin', 'user'], scope: 'read write' });
    expect(await service.verify(issued.token)).toEqual({
      ok: true,
      claims: { ...expected, roles: ['admin', 'user'], scope: 'read write' },
    });
    expect(issued).toMatchObject({ expiresAt: (iat + 900) * 1000, expiresIn: 900 });
  });

  it('carries how the user authenticated (auth_time in seconds, email_verified, amr, acr) and hands it back verified', async () => {
    const clock = new ManualClock(Date.UTC(2026, 2, 1, 12, 0, 0, 500));
    const { keys } = await setup();
    const service = makeService(keys, clock);
    const authTime = clock.now() - 90_500;
    const { token } = await service.issue({ ...ISSUE, authTime, emailVerified: true, amr: ['pwd', 'otp', 'mfa'], acr: 'aal2' });
    const claims = { auth_time: Math.floor(authTime / 1000), email_verified: true, amr: ['pwd', 'otp', 'mfa'], acr: 'aal2' };
    expect(decodeJwt(token)).toMatchObject(claims);
    const verified = await service.verify(token);
    expect(verified.ok && verified.claims).toMatchObject(claims);
  });

  it('a token issued before the authentication claims existed (none of them) still verifies until it expires', async () => {
    const { service } = await setup();
    const { token } = await service.issue(ISSUE);
    const payload = decodeJwt(token);
    for (const claim of ['auth_time', 'email_verified', 'amr', 'acr']) expect(payload).not.toHaveProperty(claim);
    const verified = await service.verify(token);
    expect(verified.ok).toBe(true);
    expect(verified.ok && verified.claims.auth_time).toBeUndefined();
  });

  it('defaults scope to the roles, space-separated', async () => {
    const { service } = await setup();
    const { token } = await service.issue(ISSUE);
    expect(decodeJwt(token).scope).toBe('admin user');
    expect(decodeJwt((await service.issue({ ...ISSUE, roles: [] })).token).scope).toBe('');
  });

  it('gives each token its own jti', async () => {
    const { service } = await setup();
    const a = decodeJwt((await service.issue(ISSUE)).token);
    const b = decodeJwt((await service.issue(ISSUE)).token);
    expect(a.jti).not.toBe(b.jti);
  });

  it('never outlives notAfter (the session end)', async () => {
    const { clock, service } = await setup();
    const notAfter = clock.now() + 60_000;
    const issued = await service.issue({ ...ISSUE, notAfter });
    expect(decodeJwt(issued.token).exp).toBe(nowSec(clock) + 60);
    expect(issued).toMatchObject({ expiresAt: notAfter, expiresIn: 60 });
  });

  it('reports expiresIn 0 rather than a negative number when notAfter has passed', async () => {
    const { clock, service } = await setup();
    const issued = await service.issue({ ...ISSUE, notAfter: clock.now() - 10_000 });
    expect(issued.expiresIn).toBe(0);
  });
});

describe('AccessTokenService.verify refuses forged and altered tokens', () => {
  it('accepts a correct hand-built token (so the refusals below are about one change each)', async () => {
    const { jwk, clock, service } = await setup();
    const token = signCompact(jwk, standardHeader(jwk), standardClaims(nowSec(clock)));
    expect((await service.verify(token)).ok).toBe(true);
  });

  it('refuses a tampered payload', async () => {
    const { clock, service } = await setup();
    const [header, , signature] = (await service.issue(ISSUE)).token.split('.');
    const payload = b64json({ ...standardClaims(nowSec(clock)), roles: ['superadmin'] });
    expect(await service.verify(`${header}.${payload}.${signature}`)).toEqual({ ok: false, reason: 'TOKEN_INVALID' });
  });

  it.each<SigningAlgorithm>(['EdDSA', 'ES256'])('refuses a tampered %s signature', async (alg) => {
    const { service } = await setup(alg);
    const [header, payload, signature = ''] = (await service.issue(ISSUE)).token.split('.');
    const flipped = (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1);
    expect(await service.verify(`${header}.${payload}.${flipped}`)).toEqual({ ok: false, reason: 'TOKEN_INVALID' });
  });

  it('refuses alg none', async () => {
    const { jwk, clock, service } = await setup();
    const token = `${b64json({ alg: 'none', kid: jwk.kid, typ: 'at+jwt' })}.${b64json(standardClaims(nowSec(clock)))}.`;
    expect(await service.verify(token)).toEqual({ ok: false, reason: 'TOKEN_INVALID' });
  });

  it('refuses HS256 tokens MACed with the public key (raw, JWK JSON or PEM)', async () => {
    const { jwk, keys, clock, service } = await setup();
    const publicJwk = keys.publicJwks()[0];
    const pem = createPublicKey({ key: { ...publicJwk } as JsonWebKey, format: 'jwk' }).export({
      type: 'spki',
      format: 'pem',
    });
    const secrets = [Buffer.from(jwk.x, 'base64url'), Buffer.from(JSON.stringify(publicJwk)), Buffer.from(pem)];
    const input = `${b64json({ alg: 'HS256', kid: jwk.kid, typ: 'at+jwt' })}.${b64json(standardClaims(nowSec(clock)))}`;
    for (const secret of secrets) {
      const mac = createHmac('sha256', secret).update(input).digest('base64url');
      expect(await service.verify(`${input}.${mac}`)).toEqual({ ok: false, reason: 'TOKEN_INVALID' });
    }
  });

  it('refuses a token without kid, or with an unknown kid', async () => {
    const { jwk, clock, service } = await setup();
    const claims = standardClaims(nowSec(clock));
    const noKid = signCompact(jwk, { alg: 'EdDSA', typ: 'at+jwt' }, claims);
    const unknownKid = signCompact(jwk, { ...standardHeader(jwk), kid: 'someone-else' }, claims);
    expect(await service.verify(noKid)).toEqual({ ok: false, reason: 'TOKEN_INVALID' });
    expect(await service.verify(unknownKid)).toEqual({ ok: false, reason: 'TOKEN_INVALID' });
  });

  it("refuses an algorithm other than the key's own (EdDSA kid, ES256 header)", async () => {
    const ed = await generateSigningJwk('EdDSA');
    const ec = await generateSigningJwk('ES256');
    const clock = new ManualClock();
    const service = makeService(await parseKeySet(keySetJson([ed, ec]), 'test'), clock);
    const claims = standardClaims(nowSec(clock));
    const genuine = signCompact(ec, standardHeader(ec), claims);
    const confused = signCompact(ec, { ...standardHeader(ec), kid: ed.kid }, claims);
    expect((await service.verify(genuine)).ok).toBe(true);
    expect(await service.verify(confused)).toEqual({ ok: false, reason: 'TOKEN_INVALID' });
  });

  it('refuses a token signed by a key the gateway does not hold, even with its kid', async () => {
    const { jwk, clock, service } = await setup();
    const stranger = { ...(await generateSigningJwk()), kid: jwk.kid };
    const token = signCompact(stranger, standardHeader(jwk), standardClaims(nowSec(clock)));
    expect(await service.verify(token)).toEqual({ ok: false, reason: 'TOKEN_INVALID' });
  });

  it.each([
    ['typ JWT', { typ: 'JWT' }],
    ['typ missing', { typ: undefined }],
    ['typ of the subgraph context token', { typ: 'tessera-ctx+jwt' }],
    ['a crit header the library does not know', { crit: ['exp'], exp: 1 }],
    ['a crit header the library knows (b64)', { crit: ['b64'], b64: true }],
  ])('refuses a header with %s', async (_name, change) => {
    const { jwk, clock, service } = await setup();
    const token = signCompact(jwk, { ...standardHeader(jwk), ...change }, standardClaims(nowSec(clock)));
    expect(await service.verify(token)).toEqual({ ok: false, reason: 'TOKEN_INVALID' });
  });

  it('refuses garbage without throwing', async () => {
    const { service } = await setup();
    for (const input of ['', 'abc', 'a.b.c', 'a.b.c.d.e', 'x'.repeat(10_000), 42 as unknown as string]) {
      expect(await service.verify(input)).toEqual({ ok: false, reason: 'TOKEN_INVALID' });
    }
  });
});

describe('AccessTokenService.verify checks every claim', () => {
  async function verifyWith(change: Record<string, unknown>, remove: string[] = []) {
    const { jwk, clock, service } = await setup();
    const claims: Record<string, unknown> = { ...standardClaims(nowSec(clock)), ...change };
    for (const name of remove) delete claims[name];
    return service.verify(signCompact(jwk, standardHeader(jwk), claims));
  }
  const INVALID = { ok: false, reason: 'TOKEN_INVALID' };

  it.each(['iss', 'aud', 'sub', 'sid', 'jti', 'iat', 'exp', 'roles', 'scope'])('refuses a token without %s', async (claim) => {
    expect(await verifyWith({}, [claim])).toEqual(INVALID);
  });

  it.each([
    ['another iss', { iss: 'https://evil.example' }],
    ['another aud', { aud: 'other-service' }],
    ['aud as an array', { aud: [AUDIENCE] }],
    ['roles as a string', { roles: 'admin' }],
    ['roles with a number', { roles: ['admin', 1] }],
    ['sid as a number', { sid: 123 }],
    ['sub empty', { sub: '' }],
    ['jti as a number', { jti: 5 }],
    ['scope as an array', { scope: ['admin'] }],
    ['exp as a string', { exp: '99999999999' }],
    ['iat as a string', { iat: '1' }],
    ['client_id as a number', { client_id: 7 }],
    ['client_id empty', { client_id: '' }],
  ])('refuses %s', async (_name, change) => {
    expect(await verifyWith(change)).toEqual(INVALID);
  });

  it('accepts a token without client_id (issued before access tokens carried it), and says so by its absence', async () => {
    const verified = await verifyWith({}, ['client_id']);
    expect(verified.ok).toBe(true);
    expect(verified.ok && verified.claims).not.toHaveProperty('client_id');
    const withIt = await verifyWith({});
    expect(withIt.ok && withIt.claims.client_id).toBe(CLIENT_ID);
  });

  it('refuses iat in the future beyond the tolerance, accepts it within', async () => {
    const { jwk, clock, service } = await setup();
    const at = (iat: number) => signCompact(jwk, standardHeader(jwk), { ...standardClaims(iat), exp: iat + 900 });
    expect(await service.verify(at(nowSec(clock) + TOLERANCE_SEC + 1))).toEqual(INVALID);
    expect((await service.verify(at(nowSec(clock) + TOLERANCE_SEC))).ok).toBe(true);
  });

  it('refuses nbf in the future beyond the tolerance, accepts it within', async () => {
    const { jwk, clock, service } = await setup();
    const withNbf = (nbf: number) => signCompact(jwk, standardHeader(jwk), { ...standardClaims(nowSec(clock)), nbf });
    expect(await service.verify(withNbf(nowSec(clock) + TOLERANCE_SEC + 1))).toEqual(INVALID);
    expect((await service.verify(withNbf(nowSec(clock) + TOLERANCE_SEC))).ok).toBe(true);
  });
});

describe('AccessTokenService.verify and expiry', () => {
  it('says TOKEN_EXPIRED once exp has passed by more than the tolerance, and accepts it until then', async () => {
    const { clock, service } = await setup();
    const issued = await service.issue(ISSUE);
    clock.set(issued.expiresAt + (TOLERANCE_SEC - 1) * 1000);
    expect((await service.verify(issued.token)).ok).toBe(true);
    clock.set(issued.expiresAt + TOLERANCE_SEC * 1000);
    expect(await service.verify(issued.token)).toEqual({ ok: false, reason: 'TOKEN_EXPIRED' });
  });

  it('says TOKEN_EXPIRED for a genuine expired token even if its claims are also bad', async () => {
    const { jwk, clock, service } = await setup();
    const claims = { ...standardClaims(nowSec(clock) - 3600), roles: 'admin' };
    expect(await service.verify(signCompact(jwk, standardHeader(jwk), claims))).toEqual({
      ok: false,
      reason: 'TOKEN_EXPIRED',
    });
  });

  it('says TOKEN_INVALID, not TOKEN_EXPIRED, for an expired token from an unknown key or with a bad signature', async () => {
    const { clock, service } = await setup();
    const other = await setup();
    const foreign = (await other.service.issue(ISSUE)).token;
    const [header, payload, signature = ''] = (await service.issue(ISSUE)).token.split('.');
    const badSignature = `${header}.${payload}.${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
    clock.advance(24 * 3600 * 1000);
    expect(await service.verify(foreign)).toEqual({ ok: false, reason: 'TOKEN_INVALID' });
    expect(await service.verify(badSignature)).toEqual({ ok: false, reason: 'TOKEN_INVALID' });
    expect((await service.verify((await service.issue(ISSUE)).token)).ok).toBe(true);
  });

  it('says TOKEN_INVALID for an expired token with the wrong audience', async () => {
    const { jwk, clock, service } = await setup();
    const claims = { ...standardClaims(nowSec(clock) - 3600), aud: 'other-service' };
    expect(await service.verify(signCompact(jwk, standardHeader(jwk), claims))).toEqual({
      ok: false,
      reason: 'TOKEN_INVALID',
    });
  });
});

describe('key rotation and the JWKS', () => {
  it('keeps old tokens valid after rotation, signs new ones with the new key, publishes both', async () => {
    const clock = new ManualClock();
    const oldJson = keySetJson([await generateSigningJwk()]);
    const oldKeys = await parseKeySet(oldJson, 'test');
    const oldToken = (await makeService(oldKeys, clock).issue(ISSUE)).token;

    const rotated = await rotateKeySetJson(oldJson);
    const newKeys = await parseKeySet(rotated.json, 'test');
    const service = makeService(newKeys, clock);
    const newToken = (await service.issue(ISSUE)).token;

    expect((await service.verify(oldToken)).ok).toBe(true);
    expect(decodeProtectedHeader(newToken).kid).toBe(newKeys.active.kid);
    expect(newKeys.active.kid).not.toBe(oldKeys.active.kid);
    expect(rotated.kid).toBe(newKeys.active.kid);
    const jwks = service.jwks();
    expect(jwks.keys.map((key) => key.kid)).toEqual([newKeys.active.kid, oldKeys.active.kid]);
    expect(JSON.stringify(jwks)).not.toMatch(/"d"/);
  });

  it.each<SigningAlgorithm>(['EdDSA', 'ES256'])('publishes only public fields of %s keys', async (alg) => {
    const { keys, service } = await setup(alg);
    const [published] = service.jwks().keys;
    const fields = alg === 'EdDSA' ? ['alg', 'crv', 'kid', 'kty', 'use', 'x'] : ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'];
    expect(Object.keys(published ?? {}).sort()).toEqual(fields);
    expect(published).toMatchObject({ kid: keys.active.kid, alg, use: 'sig' });
  });

  it('a token issued before the shared signer (signJws) and client_id still verifies; one issued now is that token with client_id added, byte for byte', async () => {
    const clock = new ManualClock(GOLDEN.nowMs);
    const keys = await parseKeySet(keySetJson(GOLDEN.jwks), 'golden');
    const service = makeService(keys, clock, () => GOLDEN.jti);
    const { token } = await service.issue({ userId: 'user-1', sessionId: 'session-1', roles: ['admin', 'user'] });
    expect(token).toBe(GOLDEN.accessTokenWithClientId);
    // The same header, and the same claims in the same order with client_id after scope.
    const segments = (jwt: string) => jwt.split('.').slice(0, 2).map((s) => JSON.parse(Buffer.from(s, 'base64url').toString()));
    const [header, claims] = segments(token);
    const [goldenHeader, goldenClaims] = segments(GOLDEN.accessToken);
    expect(header).toEqual(goldenHeader);
    const { sid, roles, scope, ...rest } = goldenClaims as Record<string, unknown>;
    expect(Object.entries(claims)).toEqual(Object.entries({ sid, roles, scope, client_id: CLIENT_ID, ...rest }));
    expect(await service.verify(GOLDEN.accessToken)).toMatchObject({ ok: true, claims: { sub: 'user-1', jti: GOLDEN.jti } });
    const served = JSON.parse(JSON.stringify(service.jwks())) as { keys: Array<{ kid: string; alg: string }> };
    const options = { issuer: ISSUER, audience: AUDIENCE, typ: 'at+jwt', currentDate: new Date(clock.now()) };
    await expect(jwtVerify(GOLDEN.accessToken, createLocalJWKSet(served), options)).resolves.toBeTruthy();
    await expect(jwtVerify(token, createLocalJWKSet(served), options)).resolves.toBeTruthy();

    // With the ES256 key active: the old EdDSA token still verifies, and a new ES256 one verifies with the JWKS alone.
    const esKeys = await parseKeySet(keySetJson([GOLDEN.jwks[1]!, GOLDEN.jwks[0]!]), 'golden');
    const esService = makeService(esKeys, clock);
    const esToken = (await esService.issue(ISSUE)).token;
    expect(decodeProtectedHeader(esToken)).toEqual({ alg: 'ES256', kid: GOLDEN.jwks[1]!.kid, typ: 'at+jwt' });
    expect((await esService.verify(GOLDEN.accessToken)).ok).toBe(true);
    expect((await esService.verify(esToken)).ok).toBe(true);
    const esServed = JSON.parse(JSON.stringify(esService.jwks())) as { keys: Array<{ kid: string; alg: string }> };
    await expect(jwtVerify(esToken, createLocalJWKSet(esServed), options)).resolves.toBeTruthy();
    await expect(jwtVerify(GOLDEN.accessToken, createLocalJWKSet(esServed), options)).resolves.toBeTruthy();
  });

  it.each<SigningAlgorithm>(['EdDSA', 'ES256'])('a %s token verifies with nothing but the served JWKS', async (alg) => {
    const { clock, service } = await setup(alg);
    const { token } = await service.issue(ISSUE);
    const served = JSON.parse(JSON.stringify(service.jwks())) as { keys: Array<{ kid: string; alg: string }> };
    const jwk = served.keys.find((key) => key.kid === decodeProtectedHeader(token).kid);
    const options = { issuer: ISSUER, audience: AUDIENCE, typ: 'at+jwt', currentDate: new Date(clock.now()) };
    const { payload } = await jwtVerify(token, await importJWK(jwk ?? {}, jwk?.alg), options);
    expect(payload.sid).toBe(SESSION);
    await expect(jwtVerify(token, createLocalJWKSet(served), options)).resolves.toBeTruthy();
  });
});
