import type { Server } from 'node:http';
import type { ApolloServer, ApolloServerPlugin } from '@apollo/server';
import type { GraphQLContext } from '../graphql/context.js';
import { metricsPlugin, requestLogPlugin, tracingPlugin } from './graphqlPlugins.js';
import { instrumentStore } from './instrumentedStore.js';
import { type Metrics, noMetrics } from './metrics.js';
import type { Tracing } from './tracing.js';

/**
 * How the composition root (createApp) hooks metrics and tracing into the gateway. Without
 * either, every step here hands back what it was given (no wrapper, no plugin on the hot path).
 */
export interface Observability {
  metrics: Metrics;
  tracing: Tracing | null;
  /** The store with its commands measured (and traced). */
  store<S extends object & { readonly kind?: string }>(store: S): S;
  /** Apollo plugins: request logging of errors, and the operation metrics and span names when on. */
  plugins: ApolloServerPlugin<GraphQLContext>[];
  /** Apollo as the HTTP server calls it: with tracing, each GraphQL request in an operation span. */
  apollo(apollo: ApolloServer<GraphQLContext>): ApolloServer<GraphQLContext>;
  /** With tracing, each HTTP request in a server span. */
  server(server: Server): void;
}

export function observability(deps: { metrics?: Metrics; tracing?: Tracing }): Observability {
  const metrics = deps.metrics ?? noMetrics;
  const tracing = deps.tracing ?? null;
  return {
    metrics,
    tracing,
    store: (store) => instrumentStore(store, metrics, tracing),
    plugins: [
      requestLogPlugin(),
      ...(metrics.enabled ? [metricsPlugin(metrics)] : []),
      ...(tracing ? [tracingPlugin(tracing)] : []),
    ],
    apollo: (apollo) => (tracing ? tracedApollo(apollo, tracing) : apollo),
    server: (server) => tracing?.instrumentServer(server),
  };
}

/** The same server, except that executeHTTPGraphQLRequest runs in an operation span. */
function tracedApollo(apollo: ApolloServer<GraphQLContext>, tracing: Tracing): ApolloServer<GraphQLContext> {
  const execute: ApolloServer<GraphQLContext>['executeHTTPGraphQLRequest'] = (request) =>
    tracing.operation(() => apollo.executeHTTPGraphQLRequest(request));
  return Object.create(apollo, { executeHTTPGraphQLRequest: { value: execute } }) as ApolloServer<GraphQLContext>;
}
