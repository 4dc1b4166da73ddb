import { makeExecutableSchema } from '@graphql-tools/schema';
import type { GraphQLSchema } from 'graphql';
import { resolvers } from './resolvers.js';
import { loadTypeDefs } from './schema.js';

/**
 * The auth schema with its resolvers, made once: the one schema object that Apollo serves over
 * HTTP and the WebSocket server (src/realtime, through wsOperations.ts) executes, subscriptions
 * included.
 */
export function createExecutableSchema(): GraphQLSchema {
  return makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers: resolvers as Record<string, unknown> as never });
}
