/**
 * The peers built on @apollo/gateway, each in its own process, on Apollo Server 5's
 * `startStandaloneServer`:
 * - AUTH=none: no authentication at all, the ceiling every ratio is taken against;
 * - AUTH=jose: what teams write by hand: a context that runs `jose.jwtVerify` on every request
 *   against the identity provider's JWKS, and a RemoteGraphQLDataSource whose `willSendRequest`
 *   forwards the caller's id as `x-user-id`.
 * Prints `listening <port>`.
 *
 * Env: PORT, SUPERGRAPH_FILE, AUTH, and for jose: JWKS_URL, PEER_ISSUER/PEER_AUDIENCE (shared.ts).
 */
import { readFileSync } from 'node:fs';
import { ApolloGateway, type GraphQLDataSourceProcessOptions, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { type StandaloneServerContextFunctionArgument, startStandaloneServer } from '@apollo/server/standalone';
import { GraphQLError } from 'graphql';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { announce, PEER_AUDIENCE, PEER_ISSUER, requireEnv, USER_ID_HEADER } from './shared.js';

interface Context {
  userId: string | null;
}

const auth = requireEnv('AUTH');
if (auth !== 'none' && auth !== 'jose') throw new Error(`AUTH: ${auth} is not none or jose`);

class UserIdDataSource extends RemoteGraphQLDataSource<Context> {
  override willSendRequest({ request, context }: GraphQLDataSourceProcessOptions<Context>): void {
    if (context.userId) request.http?.headers.set(USER_ID_HEADER, context.userId);
  }
}

// No host metrics to Apollo, no probing of cloud metadata addresses (bench.ts sets it too).
process.env.APOLLO_TELEMETRY_DISABLED = 'true';
const gateway = new ApolloGateway({
  supergraphSdl: readFileSync(requireEnv('SUPERGRAPH_FILE'), 'utf8'),
  ...(auth === 'jose' ? { buildService: ({ url }: { url?: string }) => new UserIdDataSource({ url }) } : {}),
});

const server = new ApolloServer<Context>({ gateway, introspection: false, stopOnTerminationSignals: false });

function unauthenticated(): GraphQLError {
  return new GraphQLError('Sign in first.', { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } });
}

let context: (argument: StandaloneServerContextFunctionArgument) => Promise<Context>;
if (auth === 'jose') {
  const jwks = createRemoteJWKSet(new URL(requireEnv('JWKS_URL')));
  context = async ({ req }) => {
    const header = req.headers.authorization;
    if (!header?.startsWith('Bearer ')) throw unauthenticated();
    try {
      const { payload } = await jwtVerify(header.slice(7), jwks, { issuer: PEER_ISSUER, audience: PEER_AUDIENCE, algorithms: ['EdDSA'] });
      if (typeof payload.sub !== 'string') throw unauthenticated();
      return { userId: payload.sub };
    } catch {
      throw unauthenticated();
    }
  };
} else {
  context = async () => ({ userId: null });
}

const port = Number(requireEnv('PORT'));
await startStandaloneServer(server, { listen: { port, host: '127.0.0.1' }, context });
announce(port, () => server.stop());
