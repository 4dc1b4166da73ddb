/**
 * The gateway-mode bench's subgraph: Apollo Server 5 with @apollo/subgraph (federation 2) on
 * `startStandaloneServer`, as a team writes one. The same code behind every gateway; only how it
 * learns the caller differs (IDENTITY, see shared.ts). Run by bench/gateway/run.ts in its own
 * process; prints `listening <port>`.
 *
 * Env: PORT, IDENTITY (none | header | hive | tessera), BENCH_CALLER_ID (none), TESSERA_JWKS_URL,
 * TESSERA_ISSUER (tessera).
 */
import type { IncomingMessage } from 'node:http';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { GraphQLError, parse } from 'graphql';
import { createContextVerifier } from './contextVerifier.js';
import { announce, IDENTITY_MODES, type IdentityMode, orderCountOf, requireEnv, SUBGRAPH_NAME, subgraphSdl, USER_ID_HEADER } from './shared.js';

interface Context {
  /** The caller's user id; null when the request names none. */
  callerId: string | null;
}

const mode = requireEnv('IDENTITY') as IdentityMode;
if (!IDENTITY_MODES.includes(mode)) throw new Error(`IDENTITY: ${mode} is not one of ${IDENTITY_MODES.join(', ')}`);

function unauthenticated(): GraphQLError {
  return new GraphQLError('Sign in first.', { extensions: { code: 'UNAUTHENTICATED' } });
}

function caller(context: unknown): string {
  const { callerId } = context as Context;
  if (callerId === null) throw unauthenticated();
  return callerId;
}

const resolvers = {
  Query: {
    viewer: (_: unknown, __: unknown, context: unknown) => ({ id: caller(context) }),
    me: (_: unknown, __: unknown, context: unknown) => ({ id: caller(context) }),
  },
  User: {
    __resolveReference: (reference: { id: string }) => ({ id: reference.id }),
    orderCount: (user: { id: string }, _: unknown, context: unknown) => {
      if (caller(context) !== user.id) throw new GraphQLError("Only the user's own order count can be read.", { extensions: { code: 'FORBIDDEN' } });
      return orderCountOf(user.id);
    },
  },
};
if (mode === 'tessera') delete (resolvers.Query as Partial<typeof resolvers.Query>).me;

/** How each mode reads the caller from a request. */
function contextReader(): (req: IncomingMessage) => Promise<Context> {
  switch (mode) {
    case 'none': {
      const callerId = requireEnv('BENCH_CALLER_ID');
      return async () => ({ callerId });
    }
    case 'header':
      return async (req) => {
        const value = req.headers[USER_ID_HEADER];
        return { callerId: typeof value === 'string' && value !== '' ? value : null };
      };
    case 'hive':
      return async (req) => {
        // Hive Gateway's jwt plugin (forward.payload) puts the verified payload in the request body's extensions.
        const body = (req as IncomingMessage & { body?: { extensions?: { jwt?: { payload?: { sub?: unknown } } } } }).body;
        const sub = body?.extensions?.jwt?.payload?.sub;
        return { callerId: typeof sub === 'string' && sub !== '' ? sub : null };
      };
    case 'tessera': {
      const verifier = createContextVerifier({
        jwksUrl: requireEnv('TESSERA_JWKS_URL'),
        issuer: requireEnv('TESSERA_ISSUER'),
        audience: SUBGRAPH_NAME,
      });
      return async (req) => ({ callerId: (await verifier.verify(req.headers)).user?.id ?? null });
    }
  }
}

const server = new ApolloServer<Context>({
  schema: buildSubgraphSchema({ typeDefs: parse(subgraphSdl(mode !== 'tessera')), resolvers }),
  plugins: [ApolloServerPluginInlineTraceDisabled()],
  stopOnTerminationSignals: false,
});
const read = contextReader();
const port = Number(requireEnv('PORT'));
await startStandaloneServer(server, { listen: { port, host: '127.0.0.1' }, context: ({ req }) => read(req) });
announce(port, () => server.stop());
