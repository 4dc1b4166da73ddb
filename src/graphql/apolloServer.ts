import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import type { RequestLimits } from '../config.js';
import type { Logger } from '../logger.js';
import type { GraphQLContext } from './context.js';
import { createFormatError } from './errorFormatting.js';
import { resolvers } from './resolvers.js';
import { loadTypeDefs } from './schema.js';

export interface ApolloOptions {
  production: boolean;
  logger: Logger;
  limits: RequestLimits;
}

/**
 * The GraphQL server. Outside production: introspection and Apollo Sandbox (sending cookies).
 * In production: no introspection, no landing page, no schema hints in errors, no stack traces.
 * CSRF prevention stays on and batched requests are refused.
 */
export function createApolloServer({ production, logger, limits }: ApolloOptions): ApolloServer<GraphQLContext> {
  return new ApolloServer<GraphQLContext>({
    typeDefs: loadTypeDefs(),
    resolvers,
    nodeEnv: production ? 'production' : 'development',
    introspection: !production,
    includeStacktraceInErrorResponses: !production,
    hideSchemaDetailsFromClientErrors: production,
    csrfPrevention: true,
    allowBatchedHttpRequests: limits.maxBatchSize > 1,
    formatError: createFormatError(production, logger),
    logger,
    plugins: [
      production
        ? ApolloServerPluginLandingPageDisabled()
        : ApolloServerPluginLandingPageLocalDefault({ includeCookies: true, embed: true }),
    ],
  });
}
