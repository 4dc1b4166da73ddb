import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTEXT_HEADER, CONTEXT_TOKEN_TYP, type ContextVerifier, createContextVerifier, type VerifiedContext } from '../src/index.js';

/*
 * The package does not load graphql, so what verify() throws is not a GraphQLError: these check,
 * with a real Apollo Server over HTTP, that Apollo still answers it as the GraphQL error the
 * README promises (code UNAUTHENTICATED and its reason), thrown from a resolver or from `context`.
 */

const ISSUER = 'https://auth.example.com';
const typeDefs = 'type Query { me: String }';

let jwks: Server;
let verifier: ContextVerifier;
let good: string;
let expired: string;
const servers: ApolloServer<any>[] = [];

beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA');
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  jwks = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [{ ...jwk, kid, alg: 'EdDSA', use: 'sig' }] })));
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  verifier = createContextVerifier({
    jwksUrl: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`,
    issuer: ISSUER,
    audience: 'orders',
  });
  const sign = (iat: number) =>
    new SignJWT({ sid: 'session-1', roles: ['user'], scope: 'user' })
      .setProtectedHeader({ alg: 'EdDSA', kid, typ: CONTEXT_TOKEN_TYP })
      .setIssuer(ISSUER)
      .setAudience('orders')
      .setSubject('user-1')
      .setIssuedAt(iat)
      .setExpirationTime(iat + 60)
      .sign(privateKey);
  const now = Math.floor(Date.now() / 1000);
  good = await sign(now);
  expired = await sign(now - 600);
});

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
  await new Promise<void>((resolve) => jwks.close(() => resolve()));
});

/** An Apollo Server whose `me` resolver reads the verified caller. */
async function start(where: 'context' | 'resolver'): Promise<string> {
  const server = new ApolloServer<{ verified: () => Promise<VerifiedContext> }>({
    typeDefs,
    resolvers: { Query: { me: async (_parent, _args, context) => (await context.verified()).user?.id ?? null } },
  });
  servers.push(server);
  const { url } = await startStandaloneServer(server, {
    listen: { port: 0, host: '127.0.0.1' },
    context: async ({ req }) => {
      if (where === 'context') {
        const verified = await verifier.verify(req.headers);
        return { verified: async () => verified };
      }
      return { verified: () => verifier.verify(req.headers) };
    },
  });
  return url;
}

async function ask(url: string, token?: string) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { [CONTEXT_HEADER]: token } : {}) },
    body: JSON.stringify({ query: '{ me }' }),
  });
  return { status: response.status, body: (await response.json()) as { data?: unknown; errors?: { message: string; extensions: Record<string, unknown> }[] } };
}

describe('what verify() throws, as Apollo Server answers it', () => {
  it('from a resolver: a GraphQL error with code UNAUTHENTICATED and its reason, the field null', async () => {
    const url = await start('resolver');
    expect((await ask(url, good)).body).toEqual({ data: { me: 'user-1' } });
    const { status, body } = await ask(url, expired);
    expect(status).toBe(200);
    expect(body.data).toEqual({ me: null });
    expect(body.errors).toHaveLength(1);
    expect(body.errors![0]).toMatchObject({ message: 'The gateway context has expired.', path: ['me'], extensions: { code: 'UNAUTHENTICATED', reason: 'TOKEN_EXPIRED' } });
    expect((await ask(url, 'forged')).body.errors![0]!.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_INVALID' });
  });

  it('from the context function: the request fails with code UNAUTHENTICATED (not INTERNAL_SERVER_ERROR)', async () => {
    const url = await start('context');
    expect((await ask(url)).body).toEqual({ data: { me: null } });
    const { body } = await ask(url, expired);
    expect(body.data).toBeUndefined();
    expect(body.errors).toHaveLength(1);
    expect(body.errors![0]!.message).toContain('The gateway context has expired.');
    expect(body.errors![0]!.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_EXPIRED' });
  });
});
