import { type AuthenticatedUser, type GraphQLContext, requireUser } from '../graphql/context.js';
import { clientOf } from '../graphql/eventOrigin.js';
import type { Resolvers } from '../graphql/generated/resolvers.js';
import { requireFreshAuth } from '../accounts/freshAuth.js';

/**
 * The resolvers of schema/factors.graphql, thin: the caller (with fresh authentication where
 * the contract asks for it), then the FactorService (context.factors). The mutations that answer
 * an AuthPayload (verifyMfa, finishPasskeyChallenge) are shaped in src/graphql/resolvers.ts,
 * where the payload and its cookie are made. Merged there, inside its error boundary.
 */
function freshCaller(context: GraphQLContext): AuthenticatedUser {
  return requireFreshAuth(context);
}

export const factorResolvers = {
  Query: {
    factors: (_parent, _args, context) => context.factors.list(requireUser(context).id),
  },
  Mutation: {
    enrollTotp: (_parent, _args, context) => context.factors.enrollTotp(freshCaller(context)),
    confirmTotp: (_parent, { factorId, code }, context) =>
      context.factors.confirmTotp(requireUser(context), factorId, code, clientOf(context)),
    startPasskeyRegistration: (_parent, _args, context) => context.factors.startPasskeyRegistration(freshCaller(context)),
    finishPasskeyRegistration: (_parent, { response, name }, context) =>
      context.factors.finishPasskeyRegistration(requireUser(context), response, name, clientOf(context)),
    removeFactor: (_parent, { id }, context) => context.factors.removeFactor(freshCaller(context), id, clientOf(context)),
    regenerateRecoveryCodes: (_parent, _args, context) => context.factors.regenerateRecoveryCodes(freshCaller(context), clientOf(context)),
    startPasskeyChallenge: (_parent, { mfaToken }, context) => context.factors.startPasskeyChallenge(mfaToken),
  },
  Factor: {
    createdAt: (factor) => new Date(factor.createdAt),
    lastUsedAt: (factor) => (factor.lastUsedAt === null ? null : new Date(factor.lastUsedAt)),
  },
} satisfies {
  Query: Pick<NonNullable<Resolvers['Query']>, 'factors'>;
  Mutation: Pick<
    NonNullable<Resolvers['Mutation']>,
    'enrollTotp' | 'confirmTotp' | 'startPasskeyRegistration' | 'finishPasskeyRegistration' | 'removeFactor' | 'regenerateRecoveryCodes' | 'startPasskeyChallenge'
  >;
  Factor: NonNullable<Resolvers['Factor']>;
};
