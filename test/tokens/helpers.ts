import { createPrivateKey, sign, type JsonWebKey } from 'node:crypto';
import { ManualClock } from '../../src/clock.js';
import { newId } from '../../src/ids.js';
import { AccessTokenService } from '../../src/tokens/accessTokens.js';
import { generateSigningJwk, keySetJson, parseKeySet, type KeySet, type PrivateSigningJwk } from '../../src/tokens/keys.js';
import type { SigningAlgorithm } from '../../src/tokens/types.js';

export const ISSUER = 'https://auth.example.test';
export const AUDIENCE = 'tessera';
export const CLIENT_ID = 'tessera-web';
export const TOLERANCE_SEC = 5;
export const TTL_MS = 15 * 60 * 1000;

export function makeService(keys: KeySet, clock: ManualClock, newJti?: () => string): AccessTokenService {
  return new AccessTokenService({
    keys,
    issuer: ISSUER,
    audience: AUDIENCE,
    clientId: CLIENT_ID,
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
    client_id: CLIENT_ID,
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

/**
 * A fixed key set (an EdDSA key, active, then an ES256 one) and tokens the gateway issued with it
 * before access and context tokens shared one signer (signJws in keys.ts), at 2026-05-01T12:00Z.
 * Ed25519 signatures are deterministic: the same input must still give exactly these strings,
 * and they must still verify.
 */
export const GOLDEN = {
  jwks: [
    { kid: 'DcI7yDvh-jKlb3D8z0_DFL_vHDjkfD5K-TNEnrJfX6s', kty: 'OKP', alg: 'EdDSA', use: 'sig', crv: 'Ed25519', x: 'tO9c0oSEWf0RdQ5bCXsU-De0KTe_Jwc-jxTgpAYLJgQ', d: '970dcSAroOiVVuNNDblrCZm_OTnyPKfnPRLW-0WxJHc' },
    { kid: 'l-6Iwovtu4PQ5-xGO7jDoELj7IRAuFliMP-fIveEx08', kty: 'EC', alg: 'ES256', use: 'sig', crv: 'P-256', x: '4xW1FIMtVwdZ4P4gED_x6faXs27sygwQRcFbc5uisG4', y: 'Qn9jnABplS9XzeyAqHnKHnjveRbA8CTsjp3qaybSu5Y', d: 'ccyDSFtrWWSxtaoqw5LA5m3-W4ClD4t9f8eXxdzmh6s' },
  ] satisfies PrivateSigningJwk[],
  issuer: 'https://auth.example.test',
  audience: 'tessera',
  nowMs: Date.UTC(2026, 4, 1, 12, 0, 0),
  jti: 'jti-golden',
  /** issue({ userId: 'user-1', sessionId: 'session-1', roles: ['admin', 'user'] }), ttl 15 min. */
  accessToken:
    'eyJhbGciOiJFZERTQSIsImtpZCI6IkRjSTd5RHZoLWpLbGIzRDh6MF9ERkxfdkhEamtmRDVLLVRORW5ySmZYNnMiLCJ0eXAiOiJhdCtqd3QifQ.eyJzaWQiOiJzZXNzaW9uLTEiLCJyb2xlcyI6WyJhZG1pbiIsInVzZXIiXSwic2NvcGUiOiJhZG1pbiB1c2VyIiwiaXNzIjoiaHR0cHM6Ly9hdXRoLmV4YW1wbGUudGVzdCIsImF1ZCI6InRlc3NlcmEiLCJzdWIiOiJ1c2VyLTEiLCJqdGkiOiJqdGktZ29sZGVuIiwiaWF0IjoxNzc3NjM2ODAwLCJleHAiOjE3Nzc2Mzc3MDB9.an1vdp2mrJAhnQb4bOmsmQch_ljRMfn9CCsxkThl_YQZaObeOxJVr5897QLP2ao2GadSIqVgHn1HRJR17XuwAg',
  /**
   * The same issue() once access tokens carried client_id ('tessera-web', makeService's): the
   * claims above plus client_id after scope, signed the same way.
   */
  accessTokenWithClientId:
    'eyJhbGciOiJFZERTQSIsImtpZCI6IkRjSTd5RHZoLWpLbGIzRDh6MF9ERkxfdkhEamtmRDVLLVRORW5ySmZYNnMiLCJ0eXAiOiJhdCtqd3QifQ.eyJzaWQiOiJzZXNzaW9uLTEiLCJyb2xlcyI6WyJhZG1pbiIsInVzZXIiXSwic2NvcGUiOiJhZG1pbiB1c2VyIiwiY2xpZW50X2lkIjoidGVzc2VyYS13ZWIiLCJpc3MiOiJodHRwczovL2F1dGguZXhhbXBsZS50ZXN0IiwiYXVkIjoidGVzc2VyYSIsInN1YiI6InVzZXItMSIsImp0aSI6Imp0aS1nb2xkZW4iLCJpYXQiOjE3Nzc2MzY4MDAsImV4cCI6MTc3NzYzNzcwMH0.b5WweP-HxZOgn743SQwY7F_LrZqXbs2Eu1TgCsYiA8HMtNBvMXv5ZZiBuIsZjIovjXXhUEXzGjHZt4C9tApbDg',
  /** sign({ jti: 'jti-golden', sub: 'user-1', sid: 'session-1', roles: ['admin', 'user'], scope: 'admin user', exp: now + 900 }, 'orders'). */
  contextToken:
    'eyJhbGciOiJFZERTQSIsImtpZCI6IkRjSTd5RHZoLWpLbGIzRDh6MF9ERkxfdkhEamtmRDVLLVRORW5ySmZYNnMiLCJ0eXAiOiJ0ZXNzZXJhLWN0eCtqd3QifQ.eyJzaWQiOiJzZXNzaW9uLTEiLCJyb2xlcyI6WyJhZG1pbiIsInVzZXIiXSwic2NvcGUiOiJhZG1pbiB1c2VyIiwiaXNzIjoiaHR0cHM6Ly9hdXRoLmV4YW1wbGUudGVzdCIsImF1ZCI6Im9yZGVycyIsInN1YiI6InVzZXItMSIsImlhdCI6MTc3NzYzNjgwMCwiZXhwIjoxNzc3NjM2ODYwfQ.jFZwsjoLRhWz4DS1LcFkVyXgy8Cznjlp0qVVpAxeTECVG-G5_YiFx_ZeSY9C-LfU4xlK0Y6EcMz77Ihjvlx3Bg',
};
