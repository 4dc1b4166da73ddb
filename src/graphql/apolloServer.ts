import { ApolloServer, type ApolloServerOptionsWithGateway, type ApolloServerPlugin } from '@apollo/server';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginLandingPageDisabled,
} from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import type { GraphQLSchema } from 'graphql';
import type { RequestLimits } from '../config.js';
import type { Logger } from '../logger.js';
import { libraryLogger } from '../observability/logFormat.js';
import type { GraphQLContext } from './context.js';
import { createFormatError } from './errorFormatting.js';
import { limitParseOptions, operationLimitRules } from './operationLimits.js';
import { anonymousCacheControlPlugin } from './anonymousCacheControl.js';
import { createExecutableSchema } from './executableSchema.js';
import { serviceUnavailableStatusPlugin } from './serviceUnavailableStatus.js';

export interface ApolloOptions {
  production: boolean;
  logger: Logger;
  limits: RequestLimits;
  /** The standalone schema (createExecutableSchema), shared with the WebSocket server; made here if not given. */
  schema?: GraphQLSchema;
  /** More plugins (metrics, tracing, request logging: src/observability). */
  plugins?: ApolloServerPlugin<GraphQLContext>[];
  /**
   * Federation mode: the supergraph's gateway (src/federation/gateway.ts) instead of the auth
   * schema alone; `formatError` adapts error formatting to errors that come through it.
   */
  federation?: {
    gateway: ApolloServerOptionsWithGateway<GraphQLContext>['gateway'];
    formatError: (base: FormatError) => FormatError;
  };
}

type FormatError = NonNullable<ApolloServerOptionsWithGateway<GraphQLContext>['formatError']>;

/**
 * The GraphQL server. Outside production: introspection and Apollo Sandbox (sending cookies).
 * In production: no introspection, no landing page, no schema hints in errors, no stack traces.
 * CSRF prevention stays on; batched requests are refused unless MAX_BATCH_SIZE > 1. Operation
 * limits (document size, tokens, depth, aliases, root fields, directives) refuse an operation
 * before any resolver runs.
 */
export function createApolloServer({ production, logger, limits, federation, schema: executable, plugins = [] }: ApolloOptions): ApolloServer<GraphQLContext> {
  const formatError = createFormatError(production, logger);
  const schema = federation
    ? { gateway: federation.gateway, formatError: federation.formatError(formatError) }
    : { schema: executable ?? createExecutableSchema(), formatError };
  return new ApolloServer<GraphQLContext>({
    ...schema,
    nodeEnv: production ? 'production' : 'development',
    introspection: !production,
    includeStacktraceInErrorResponses: !production,
    hideSchemaDetailsFromClientErrors: production,
    csrfPrevention: true,
    // main.ts owns SIGTERM: it drains in-flight requests before Apollo stops.
    stopOnTerminationSignals: false,
    allowBatchedHttpRequests: limits.maxBatchSize > 1,
    parseOptions: limitParseOptions(limits),
    validationRules: operationLimitRules(limits),
    logger: libraryLogger(logger),
    plugins: [
      ...plugins,
      // Apollo's cache-control hints matter only for anonymous answers in gateway mode (the
      // subgraphs' hints); standalone every answer is Cache-Control: no-store (src/http), so they
      // would be computed per request for nothing.
      ApolloServerPluginCacheControlDisabled(),
      ...(federation ? [anonymousCacheControlPlugin<GraphQLContext>()] : []),
      serviceUnavailableStatusPlugin<GraphQLContext>(),
      production
        ? ApolloServerPluginLandingPageDisabled()
        : ApolloServerPluginLandingPageLocalDefault({ includeCookies: true, embed: true }),
    ],
  });
}
