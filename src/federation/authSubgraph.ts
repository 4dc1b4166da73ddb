import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import { type GraphQLSchema, parse } from 'graphql';
import { forbidden } from '../errors.js';
import { type GraphQLContext, requireUser } from '../graphql/context.js';
import { guarded } from '../graphql/errorBoundary.js';
import type { UserModel } from '../graphql/models.js';
import { resolvers } from '../graphql/resolvers.js';
import { loadSubgraphTypeDefs } from '../graphql/schema.js';

/** The name of the gateway's own subgraph, served in process. */
export const AUTH_SUBGRAPH = 'auth';

/**
 * A `User` another subgraph refers to. Only the caller's own account resolves: a subgraph that
 * returns other users (an order's seller, say) must not turn the auth subgraph into a directory
 * of everyone's email and roles.
 */
async function resolveUserReference(reference: { id: string }, context: GraphQLContext): Promise<UserModel | null> {
  const caller = requireUser(context);
  if (reference.id !== caller.id) throw forbidden("Only the signed-in user's own account can be read.");
  const record = await context.loaders.users.load(reference.id);
  return record ? { id: record.id, record } : null;
}

/**
 * The auth schema as the in-process subgraph `auth` of the supergraph: the same SDL and
 * resolvers as the standalone server, plus `User @key(fields: "id")`. The gateway executes it
 * with its own request context, so the refresh cookie and `context.user` work as they do
 * standalone.
 */
export function createAuthSubgraphSchema(): GraphQLSchema {
  const map = {
    ...resolvers,
    User: { ...resolvers.User, __resolveReference: guarded(resolveUserReference) },
  } as unknown as GraphQLResolverMap<unknown>;
  return buildSubgraphSchema({ typeDefs: parse(loadSubgraphTypeDefs()), resolvers: map });
}
