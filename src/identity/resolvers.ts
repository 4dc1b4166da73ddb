import { payload } from '../graphql/authPayload.js';
import { type GraphQLContext, requireUser } from '../graphql/context.js';
import { clientOf } from '../graphql/eventOrigin.js';
import type { Resolvers } from '../graphql/generated/resolvers.js';
import { requireFreshAuth } from '../accounts/freshAuth.js';
import { forbiddenBecause } from '../errors.js';
import type { IdentityService } from './identityService.js';

/** No providers configured: the fields answer as a gateway without the feature would. */
function service(context: GraphQLContext): IdentityService {
  if (context.identity) return context.identity;
  throw forbiddenBecause('FEATURE_DISABLED');
}

/**
 * The resolvers of schema/identity.graphql, thin: the caller, then the IdentityService
 * (context.identity). Merged into the schema's resolvers (and their error boundary) in
 * src/graphql/resolvers.ts.
 */
export const identityResolvers = {
  Query: {
    identities: (_parent, _args, context) => service(context).listIdentities(requireUser(context).id),
  },
  Mutation: {
    exchangeLoginCode: async (_parent, { code }, context) =>
      payload(await service(context).exchangeLoginCode(code, clientOf(context)), context),
    unlinkIdentity: async (_parent, { id }, context) => {
      const identity = service(context);
      return identity.unlink(requireFreshAuth(context).id, id, clientOf(context));
    },
    startIdentityLink: async (_parent, { provider, redirectUri }, context) => {
      const identity = service(context);
      return identity.startLink(requireFreshAuth(context).id, provider, redirectUri);
    },
  },
  Identity: {
    linkedAt: (identity) => new Date(identity.linkedAt),
  },
} satisfies Pick<Resolvers, 'Query' | 'Mutation' | 'Identity'>;
