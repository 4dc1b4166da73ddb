import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { calculateJwkThumbprint, type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTEXT_HEADER, CONTEXT_TOKEN_TYP, ContextError, createContextVerifier } from '../src/index.js';

/*
 * The package on its own: tokens signed here with jose as the gateway signs them (the gateway's
 * own signer is checked against this verifier in the repository's test/federation), and the
 * gateway's JWKS served over real HTTP.
 */

const ISSUER = 'https://auth.example.com';

interface TestKey {
  kid: string;
  alg: 'EdDSA' | 'ES256';
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function newKey(alg: 'EdDSA' | 'ES256' = 'EdDSA'): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, alg, privateKey, publicJwk: { ...jwk, kid, alg, use: 'sig' } };
}

/** A JWKS over real HTTP, as the gateway publishes it; counts its requests; can be switched off. */
let jwksServer: Server;
let jwksUrl: string;
let published: TestKey[];
let jwksRequests = 0;
let jwksDown = false;

beforeAll(async () => {
  published = [await newKey()];
  jwksServer = createServer((_req, res) => {
    jwksRequests += 1;
    if (jwksDown) {
      res.writeHead(503).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: published.map((key) => key.publicJwk) }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/jwks.json`;
});

afterAll(() => new Promise<void>((resolve) => jwksServer.close(() => resolve())));

interface Subject {
  sub: string;
  sid: string;
  roles: string[];
  scope: string;
  auth_time?: unknown;
  email_verified?: unknown;
  amr?: unknown;
  acr?: unknown;
}

const USER: Subject = { sub: 'user-1', sid: 'session-1', roles: ['user'], scope: 'user orders:read' };

function verifier(options: { audience?: string; jwksCooldownMs?: number } = {}) {
  return createContextVerifier({ jwksUrl, issuer: ISSUER, audience: options.audience ?? 'orders', ...options });
}

/** A context token as the gateway signs one (or with one thing changed). */
function sign(
  options: {
    key?: TestKey;
    kid?: string;
    typ?: string;
    issuer?: string;
    audience?: string;
    nowMs?: number;
    lifeSec?: number;
    subject?: Partial<Subject>;
  } = {},
): Promise<string> {
  const key = options.key ?? published[0]!;
  const iat = Math.floor((options.nowMs ?? Date.now()) / 1000);
  const { sub, ...claims } = { ...USER, ...options.subject };
  return new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: options.kid ?? key.kid, typ: options.typ ?? CONTEXT_TOKEN_TYP })
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? 'orders')
    .setSubject(sub)
    .setIssuedAt(iat)
    .setExpirationTime(iat + (options.lifeSec ?? 60))
    .sign(key.privateKey);
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

async function refusal(promise: Promise<unknown>): Promise<ContextError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error, 'verify should have thrown').toBeInstanceOf(ContextError);
  return error as ContextError;
}

describe('createContextVerifier', () => {
  it('a genuine context gives the user: id, roles, sessionId (and scopes)', async () => {
    const token = await sign();
    expect(await verifier().verify({ [CONTEXT_HEADER]: token })).toEqual({
      user: {
        id: 'user-1',
        roles: ['user'],
        sessionId: 'session-1',
        scopes: ['user', 'orders:read'],
        // A context without the authentication claims (as from a gateway before them).
        authTime: null,
        emailVerified: null,
        amr: [],
        acr: null,
      },
    });
  });

  it('passes on how the user authenticated: auth_time, email_verified, amr, acr', async () => {
    const authTime = Math.floor(Date.now() / 1000) - 30;
    const token = await sign({ subject: { auth_time: authTime, email_verified: true, amr: ['pwd', 'otp', 'mfa'], acr: 'aal2' } });
    const { user } = await verifier().verify({ [CONTEXT_HEADER]: token });
    expect(user).toMatchObject({ id: 'user-1', authTime, emailVerified: true, amr: ['pwd', 'otp', 'mfa'], acr: 'aal2' });
  });

  it('refuses authentication claims of the wrong type (the one validator checks them)', async () => {
    for (const subject of [{ auth_time: '12' }, { auth_time: 1.5 }, { email_verified: 'yes' }, { amr: 'pwd' }, { amr: [1] }, { acr: '' }, { acr: 2 }]) {
      const error = await refusal(verifier().verify({ [CONTEXT_HEADER]: await sign({ subject }) }));
      expect(error.extensions, JSON.stringify(subject)).toEqual({ code: 'UNAUTHENTICATED', reason: 'TOKEN_INVALID' });
    }
  });

  it('verifies ES256 as well as EdDSA', async () => {
    const es256 = await newKey('ES256');
    published.push(es256);
    try {
      expect((await verifier().verify({ [CONTEXT_HEADER]: await sign({ key: es256 }) })).user?.id).toBe('user-1');
    } finally {
      published.pop();
    }
  });

  it('no header: no user', async () => {
    expect(await verifier().verify({})).toEqual({ user: null });
    expect(await verifier().verify(new Headers({ authorization: 'Bearer x' }))).toEqual({ user: null });
  });

  it('reads a Headers object, a plain record in any case, and Node request headers', async () => {
    const token = await sign();
    const v = verifier();
    const node: IncomingHttpHeaders = { 'x-tessera-context': token, host: 'orders' };
    for (const headers of [new Headers({ 'X-Tessera-Context': token }), { 'X-Tessera-Context': token }, node]) {
      expect((await v.verify(headers)).user?.id).toBe('user-1');
    }
  });

  it.each<[string, () => Promise<string | string[]>, string]>([
    ['signed with another key under the published kid', async () => sign({ key: await newKey(), kid: published[0]!.kid }), 'TOKEN_INVALID'],
    ['signed with a key the gateway does not publish', async () => sign({ key: await newKey() }), 'TOKEN_INVALID'],
    ['expired', async () => sign({ nowMs: Date.now() - 120_000 }), 'TOKEN_EXPIRED'],
    ['addressed to another subgraph', async () => sign({ audience: 'billing' }), 'TOKEN_INVALID'],
    ['from another issuer', async () => sign({ issuer: 'https://evil.example.com' }), 'TOKEN_INVALID'],
    ['unsigned (alg none)', async () => {
      const [, payload] = (await sign()).split('.');
      return `${b64({ alg: 'none', typ: CONTEXT_TOKEN_TYP, kid: published[0]!.kid })}.${payload}.`;
    }, 'TOKEN_INVALID'],
    ['with a changed claim', async () => {
      const [header, payload, signature] = (await sign()).split('.') as [string, string, string];
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
      return `${header}.${b64({ ...claims, roles: ['admin'] })}.${signature}`;
    }, 'TOKEN_INVALID'],
    ['an access token instead (typ at+jwt)', async () => sign({ typ: 'at+jwt' }), 'TOKEN_INVALID'],
    ['with roles that are not strings', async () => sign({ subject: { roles: [1, 2] as unknown as string[] } }), 'TOKEN_INVALID'],
    ['sent twice', async () => [await sign(), await sign({ subject: { sub: 'user-2' } })], 'TOKEN_INVALID'],
    ['sent twice, joined into one header', async () => `${await sign()}, ${await sign()}`, 'TOKEN_INVALID'],
    ['not a JWT at all', async () => 'not-a-token', 'TOKEN_INVALID'],
  ])('%s: UNAUTHENTICATED', async (_name, make, reason) => {
    const header = await make();
    const error = await refusal(verifier().verify({ [CONTEXT_HEADER]: header }));
    expect(error.extensions).toEqual({ code: 'UNAUTHENTICATED', reason });
  });

  it('a context that lives longer than 60 s is refused even if signed by the gateway key', async () => {
    const error = await refusal(verifier().verify({ [CONTEXT_HEADER]: await sign({ lifeSec: 3600 }) }));
    expect(error.extensions).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('fetches the JWKS once and caches it', async () => {
    const v = verifier();
    const before = jwksRequests;
    for (let i = 0; i < 5; i++) expect((await v.verify({ [CONTEXT_HEADER]: await sign() })).user).not.toBeNull();
    expect(jwksRequests - before).toBe(1);
  });

  it('fetches it again for a kid it does not know (the gateway rotated its keys)', async () => {
    const v = verifier({ jwksCooldownMs: 0 });
    await v.verify({ [CONTEXT_HEADER]: await sign() });
    const before = jwksRequests;
    const rotated = await newKey();
    published.unshift(rotated);
    try {
      expect((await v.verify({ [CONTEXT_HEADER]: await sign({ key: rotated }) })).user?.id).toBe('user-1');
      expect(jwksRequests - before).toBe(1);
    } finally {
      published.shift();
    }
  });

  it('a JWKS that cannot be fetched is SERVICE_UNAVAILABLE, not the caller’s fault', async () => {
    jwksDown = true;
    try {
      const error = await refusal(verifier().verify({ [CONTEXT_HEADER]: await sign() }));
      expect(error.extensions).toEqual({ code: 'SERVICE_UNAVAILABLE' });
      expect(error.message).toBe('The gateway keys cannot be fetched.');
    } finally {
      jwksDown = false;
    }
  });

  it('refuses options it cannot work with', () => {
    expect(() => createContextVerifier({ jwksUrl, issuer: ISSUER, audience: 'orders', clockToleranceSec: 61 })).toThrow(RangeError);
    expect(() => createContextVerifier({ jwksUrl, issuer: '', audience: 'orders' })).toThrow(TypeError);
  });
});

describe('the cache of verified context tokens', () => {
  /** A settable clock, epoch ms. */
  function clockAt(ms: number) {
    let now = ms;
    return { now: () => now, set: (value: number) => (now = value), advance: (by: number) => (now += by) };
  }
  const cachedVerifier = (clock: { now(): number }, extra: { cacheSize?: number } = {}) =>
    createContextVerifier({ jwksUrl, issuer: ISSUER, audience: 'orders', clock, clockToleranceSec: 5, ...extra });

  it('a token sent again is verified once: the same user comes back from the cache', async () => {
    const clock = clockAt(Date.now());
    const v = cachedVerifier(clock);
    const token = await sign({ nowMs: clock.now() });
    const first = await v.verify({ [CONTEXT_HEADER]: token });
    expect(v.cachedTokens).toBe(1);
    const second = await v.verify({ [CONTEXT_HEADER]: token });
    expect(second.user).toBe(first.user); // the very object verified the first time
    expect(second.user).toMatchObject({ id: 'user-1', roles: ['user'], sessionId: 'session-1', scopes: ['user', 'orders:read'] });
    expect(Object.isFrozen(second.user)).toBe(true);
  });

  it('never outlives exp: past exp + tolerance the cached token is refused as expired, as a fresh verify would', async () => {
    const clock = clockAt(Date.now());
    const v = cachedVerifier(clock);
    const token = await sign({ nowMs: clock.now(), lifeSec: 30 });
    await v.verify({ [CONTEXT_HEADER]: token });
    clock.advance(34_000); // exp + 4 s: within the tolerance
    expect((await v.verify({ [CONTEXT_HEADER]: token })).user?.id).toBe('user-1');
    clock.advance(2_000); // exp + 6 s
    const fresh = await refusal(cachedVerifier(clock, { cacheSize: 0 }).verify({ [CONTEXT_HEADER]: token }));
    const cached = await refusal(v.verify({ [CONTEXT_HEADER]: token }));
    expect(cached.extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'TOKEN_EXPIRED' });
    expect(cached.extensions).toEqual(fresh.extensions);
    expect(v.cachedTokens).toBe(0);
  });

  it('a clock that steps back before iat (beyond the tolerance) refuses the cached token too', async () => {
    const clock = clockAt(Date.now());
    const v = cachedVerifier(clock);
    const token = await sign({ nowMs: clock.now() });
    await v.verify({ [CONTEXT_HEADER]: token });
    clock.advance(-10_000);
    const cached = await refusal(v.verify({ [CONTEXT_HEADER]: token }));
    const fresh = await refusal(cachedVerifier(clock, { cacheSize: 0 }).verify({ [CONTEXT_HEADER]: token }));
    expect(cached.extensions).toEqual(fresh.extensions);
    expect(cached.extensions.code).toBe('UNAUTHENTICATED');
  });

  it('failures are never cached, and a token differing in one character is verified on its own', async () => {
    const clock = clockAt(Date.now());
    const v = cachedVerifier(clock);
    const forged = await sign({ nowMs: clock.now(), key: await newKey() });
    for (let i = 0; i < 2; i++) await refusal(v.verify({ [CONTEXT_HEADER]: forged }));
    const wrongAudience = await sign({ nowMs: clock.now(), audience: 'billing' });
    for (let i = 0; i < 2; i++) await refusal(v.verify({ [CONTEXT_HEADER]: wrongAudience }));
    expect(v.cachedTokens).toBe(0);
    const token = await sign({ nowMs: clock.now() });
    await v.verify({ [CONTEXT_HEADER]: token });
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const flipped = `${header}.${payload}.${signature.slice(0, -2)}${signature.at(-2) === 'A' ? 'B' : 'A'}${signature.at(-1)}`;
    const error = await refusal(v.verify({ [CONTEXT_HEADER]: flipped }));
    expect(error.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_INVALID' });
    expect(v.cachedTokens).toBe(1);
  });

  it('is bounded: the oldest entry goes first; cacheSize 0 keeps nothing', async () => {
    const clock = clockAt(Date.now());
    const v = cachedVerifier(clock, { cacheSize: 2 });
    const tokens = await Promise.all(['a', 'b', 'c'].map((sid) => sign({ nowMs: clock.now(), subject: { sid } })));
    for (const token of tokens) await v.verify({ [CONTEXT_HEADER]: token });
    expect(v.cachedTokens).toBe(2);
    const none = cachedVerifier(clock, { cacheSize: 0 });
    await none.verify({ [CONTEXT_HEADER]: tokens[0]! });
    expect(none.cachedTokens).toBe(0);
    expect(() => cachedVerifier(clock, { cacheSize: -1 })).toThrow(RangeError);
  });
});

describe('verifyConnectionParams (graphql-ws servers)', () => {
  it('reads x-tessera-context from connection_init or a renewal ping payload, verified and cached like the header', async () => {
    const clock = { now: () => Date.now() };
    const v = createContextVerifier({ jwksUrl, issuer: ISSUER, audience: 'orders', clock });
    const token = await sign();
    const first = await v.verifyConnectionParams({ [CONTEXT_HEADER]: token });
    expect(first).toMatchObject({ user: { id: 'user-1', roles: ['user'], sessionId: 'session-1', scopes: ['user', 'orders:read'] } });
    expect(v.cachedTokens).toBe(1);
    expect((await v.verify({ [CONTEXT_HEADER]: token })).user).toBe(first.user);
    // A renewal's new token, for another session, is verified on its own.
    const renewed = await v.verifyConnectionParams({ [CONTEXT_HEADER]: await sign({ subject: { sid: 'session-2' } }) });
    expect(renewed.user?.sessionId).toBe('session-2');
  });

  it('no payload, or none in it: anonymous; a value that is not one usable string, forged or for another subgraph: refused', async () => {
    const v = verifier();
    for (const params of [undefined, null, {}, { authorization: 'Bearer x' }]) {
      expect(await v.verifyConnectionParams(params)).toEqual({ user: null });
    }
    for (const value of [42, ['a', 'b'], '', { token: 'x' }]) {
      const error = await refusal(v.verifyConnectionParams({ [CONTEXT_HEADER]: value }));
      expect(error.extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'TOKEN_INVALID' });
    }
    const forged = `${(await sign()).slice(0, -4)}AAAA`;
    expect((await refusal(v.verifyConnectionParams({ [CONTEXT_HEADER]: forged }))).extensions).toMatchObject({ code: 'UNAUTHENTICATED' });
    const elsewhere = await sign({ audience: 'reviews' });
    expect((await refusal(v.verifyConnectionParams({ [CONTEXT_HEADER]: elsewhere }))).extensions).toMatchObject({ code: 'UNAUTHENTICATED' });
    const expired = await sign({ nowMs: Date.now() - 120_000 });
    expect((await refusal(v.verifyConnectionParams({ [CONTEXT_HEADER]: expired }))).extensions).toEqual({
      code: 'UNAUTHENTICATED',
      reason: 'TOKEN_EXPIRED',
    });
  });
});
