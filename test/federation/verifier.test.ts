import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { createContextVerifier } from '../../src/subgraph/index.js';
import { AccessTokenService } from '../../src/tokens/accessTokens.js';
import { type ContextSubject, ContextTokenSigner } from '../../src/tokens/contextTokens.js';
import type { KeySet } from '../../src/tokens/keys.js';
import { testKeySet } from '../helpers/keys.js';

const ISSUER = 'https://auth.example.com';

/** A JWKS over real HTTP, as the gateway publishes it; counts its requests; can be switched off. */
let jwksServer: Server;
let jwksUrl: string;
let published: KeySet;
let jwksRequests = 0;
let jwksDown = false;

beforeAll(async () => {
  published = await testKeySet();
  jwksServer = createServer((_req, res) => {
    jwksRequests += 1;
    if (jwksDown) {
      res.writeHead(503).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: published.publicJwks() }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/jwks.json`;
});

afterAll(() => new Promise<void>((resolve) => jwksServer.close(() => resolve())));

const USER: ContextSubject = {
  sub: 'user-1',
  sid: 'session-1',
  roles: ['user'],
  scope: 'user orders:read',
  exp: Math.floor(Date.now() / 1000) + 900,
};

function verifier(options: { audience?: string; jwksCooldownMs?: number } = {}) {
  return createContextVerifier({ jwksUrl, issuer: ISSUER, audience: options.audience ?? 'orders', ...options });
}

/** A context token as the gateway signs one (or with one thing changed). */
function sign(
  options: { keys?: KeySet; issuer?: string; audience?: string; clock?: ManualClock; subject?: Partial<ContextSubject> } = {},
): Promise<string> {
  const signer = new ContextTokenSigner({
    keys: options.keys ?? published,
    issuer: options.issuer ?? ISSUER,
    clock: options.clock ?? new ManualClock(Date.now()),
  });
  return signer.sign({ ...USER, ...options.subject }, options.audience ?? 'orders');
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

async function refusal(promise: Promise<unknown>): Promise<Record<string, unknown>> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e as { extensions: Record<string, unknown> },
  );
  expect(error, 'verify should have thrown').not.toBeNull();
  return error!.extensions;
}

describe('createContextVerifier', () => {
  it('a genuine context gives the user: id, roles, sessionId (and scopes)', async () => {
    const token = await sign();
    expect(await verifier().verify({ 'x-tessera-context': token })).toEqual({
      user: { id: 'user-1', roles: ['user'], sessionId: 'session-1', scopes: ['user', 'orders:read'] },
    });
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
    ['signed with another key under the published kid', async () => {
      const other = await testKeySet();
      const forged = await sign({ keys: { ...other, active: { ...other.active, kid: published.active.kid } } });
      return forged;
    }, 'TOKEN_INVALID'],
    ['signed with a key the gateway does not publish', async () => sign({ keys: await testKeySet() }), 'TOKEN_INVALID'],
    ['expired', async () => sign({ clock: new ManualClock(Date.now() - 120_000) }), 'TOKEN_EXPIRED'],
    ['addressed to another subgraph', async () => sign({ audience: 'billing' }), 'TOKEN_INVALID'],
    ['from another issuer', async () => sign({ issuer: 'https://evil.example.com' }), 'TOKEN_INVALID'],
    ['unsigned (alg none)', async () => {
      const [, payload] = (await sign()).split('.');
      return `${b64({ alg: 'none', typ: 'tessera-ctx+jwt', kid: published.active.kid })}.${payload}.`;
    }, 'TOKEN_INVALID'],
    ['with a changed claim', async () => {
      const [header, payload, signature] = (await sign()).split('.') as [string, string, string];
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
      return `${header}.${b64({ ...claims, roles: ['admin'] })}.${signature}`;
    }, 'TOKEN_INVALID'],
    ['an access token instead (typ at+jwt)', async () => {
      const service = new AccessTokenService({ keys: published, issuer: ISSUER, audience: 'orders', clientId: 'tessera', ttlMs: 60_000, clockToleranceSec: 5, clock: new ManualClock(Date.now()) });
      return (await service.issue({ userId: 'user-1', sessionId: 'session-1', roles: ['user'] })).token;
    }, 'TOKEN_INVALID'],
    ['sent twice', async () => [await sign(), await sign({ subject: { sub: 'user-2' } })], 'TOKEN_INVALID'],
    ['not a JWT at all', async () => 'not-a-token', 'TOKEN_INVALID'],
  ])('%s: UNAUTHENTICATED', async (_name, make, reason) => {
    const header = await make();
    expect(await refusal(verifier().verify({ 'x-tessera-context': header }))).toEqual({ code: 'UNAUTHENTICATED', reason });
  });

  it('a context that lives longer than 60 s is refused even if signed by the gateway key', async () => {
    const [header] = (await sign()).split('.');
    const { SignJWT } = await import('jose');
    const now = Math.floor(Date.now() / 1000);
    const long = await new SignJWT({ sid: 's', roles: [], scope: '' })
      .setProtectedHeader(JSON.parse(Buffer.from(header!, 'base64url').toString()))
      .setIssuer(ISSUER)
      .setAudience('orders')
      .setSubject('user-1')
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(published.active.privateKey);
    expect(await refusal(verifier().verify({ 'x-tessera-context': long }))).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('fetches the JWKS once and caches it', async () => {
    const v = verifier();
    const before = jwksRequests;
    for (let i = 0; i < 5; i++) expect((await v.verify({ 'x-tessera-context': await sign() })).user).not.toBeNull();
    expect(jwksRequests - before).toBe(1);
  });

  it('fetches it again for a kid it does not know (the gateway rotated its keys)', async () => {
    const v = verifier({ jwksCooldownMs: 0 });
    await v.verify({ 'x-tessera-context': await sign() });
    const before = jwksRequests;
    const rotated = await testKeySet();
    const previous = published;
    published = { ...rotated, keys: [...rotated.keys, ...previous.keys], publicJwks: () => [...rotated.publicJwks(), ...previous.publicJwks()] };
    try {
      expect((await v.verify({ 'x-tessera-context': await sign() })).user?.id).toBe('user-1');
      expect(jwksRequests - before).toBe(1);
    } finally {
      published = previous;
    }
  });

  it('a JWKS that cannot be fetched is SERVICE_UNAVAILABLE, not the caller’s fault', async () => {
    jwksDown = true;
    try {
      expect(await refusal(verifier().verify({ 'x-tessera-context': await sign() }))).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    } finally {
      jwksDown = false;
    }
  });
});
