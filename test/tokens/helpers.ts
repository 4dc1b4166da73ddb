import { createPrivateKey, sign, type JsonWebKey } from 'node:crypto';
import { ManualClock } from '../../src/clock.js';
import { newId } from '../../src/ids.js';
import { AccessTokenService } from '../../src/tokens/accessTokens.js';
import { generateSigningJwk, keySetJson, parseKeySet, type KeySet, type PrivateSigningJwk } from '../../src/tokens/keys.js';
import type { SigningAlgorithm } from '../../src/tokens/types.js';

export const ISSUER = 'https://auth.example.test';
export const AUDIENCE = 'tessera';
export const TOLERANCE_SEC = 5;
export const TTL_MS = 15 * 60 * 1000;

export function makeService(keys: KeySet, clock: ManualClock, newJti?: () => string): AccessTokenService {
  return new AccessTokenService({
    keys,
    issuer: ISSUER,
    audience: AUDIENCE,
    ttlMs: TTL_MS,
    clockToleranceSec: TOLERANCE_SEC,
    clock,
    ...(newJti ? { newJti } : {}),
  });
}

/** A service over one fresh key, with the private JWK kept so tests can forge tokens by hand. */
export async function setup(alg: SigningAlgorithm = 'EdDSA') {
  const jwk = await generateSigningJwk(alg);
  const keys = await parseKeySet(keySetJson([jwk]), 'test');
  const clock = new ManualClock();
  return { jwk, keys, clock, service: makeService(keys, clock) };
}

export function nowSec(clock: ManualClock): number {
  return Math.floor(clock.now() / 1000);
}

export function b64json(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** Claims exactly as the gateway issues them, for tests to change one at a time. */
export function standardClaims(iat: number): Record<string, unknown> {
  return {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: newId(),
    sid: newId(),
    jti: newId(),
    iat,
    exp: iat + 900,
    roles: ['admin', 'user'],
    scope: 'admin user',
  };
}

export function standardHeader(jwk: PrivateSigningJwk): Record<string, unknown> {
  return { alg: jwk.alg, kid: jwk.kid, typ: 'at+jwt' };
}

/** Signs any header and payload with node:crypto, bypassing every check a JWT library would make. */
export function signCompact(
  jwk: PrivateSigningJwk,
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
): string {
  const input = Buffer.from(`${b64json(header)}.${b64json(payload)}`);
  const key = createPrivateKey({ key: { ...jwk } as JsonWebKey, format: 'jwk' });
  const signature =
    jwk.alg === 'EdDSA' ? sign(null, input, key) : sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' });
  return `${input.toString()}.${signature.toString('base64url')}`;
}
