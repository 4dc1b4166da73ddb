// The example orders subgraph: an Apollo Server built with @apollo/subgraph that trusts the
// Tessera gateway's x-tessera-context header (through a verifier from `@tessera-gateway/subgraph`) and
// nothing else. server.mjs runs it; tests start it in process.
import { readFileSync } from 'node:fs';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { GraphQLError, parse } from 'graphql';

export const typeDefs = readFileSync(new URL('./orders.graphql', import.meta.url), 'utf8');

const STATUSES = ['DELIVERED', 'SHIPPED', 'PLACED'];

/** Made-up orders, the same for a user every time. */
export function ordersOf(userId) {
  const seed = [...userId].reduce((sum, c) => (sum * 31 + c.charCodeAt(0)) % 100_000, 7);
  return STATUSES.map((status, i) => ({
    id: `${userId}-${i + 1}`,
    placedAt: new Date(Date.UTC(2026, 0, 1) + (seed % 1000) * 60_000 + i * 86_400_000).toISOString(),
    status,
    total: ((seed * (i + 3)) % 20_000) / 100,
  })).reverse();
}

const resolvers = {
  Query: {
    orderStatuses: () => [...STATUSES].reverse(),
  },
  User: {
    __resolveReference: (reference) => ({ id: reference.id }),
    orders: (user, _args, context) => {
      const caller = requireCaller(context);
      if (caller.id !== user.id) {
        throw new GraphQLError("Only the user's own orders can be read.", { extensions: { code: 'FORBIDDEN' } });
      }
      return ordersOf(user.id);
    },
  },
};

/** The caller the gateway vouched for, or the reason there is none. */
function requireCaller(context) {
  if (context.contextError) throw context.contextError;
  if (!context.user) {
    throw new GraphQLError('Sign in to see orders.', { extensions: { code: 'UNAUTHENTICATED', reason: 'TOKEN_MISSING' } });
  }
  return context.user;
}

/**
 * Starts the subgraph over HTTP.
 * @param {{ verifier: import('@tessera-gateway/subgraph').ContextVerifier, port?: number, host?: string,
 *   onRequest?: (headers: import('node:http').IncomingHttpHeaders) => void }} options
 */
export async function startOrdersSubgraph({ verifier, port = 4001, host = '127.0.0.1', onRequest }) {
  const server = new ApolloServer({
    schema: buildSubgraphSchema({ typeDefs: parse(typeDefs), resolvers }),
    plugins: [ApolloServerPluginInlineTraceDisabled()],
  });
  const { url } = await startStandaloneServer(server, {
    listen: { port, host },
    context: async ({ req }) => {
      onRequest?.(req.headers);
      // A bad context fails the fields that need a caller, not the whole request.
      try {
        return { ...(await verifier.verify(req.headers)), contextError: null };
      } catch (error) {
        return { user: null, contextError: error };
      }
    },
  });
  return { url, stop: () => server.stop() };
}
