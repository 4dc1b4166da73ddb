import type { ApolloServerPlugin, GraphQLRequestListener } from '@apollo/server';
import type { GraphQLContext } from '../graphql/context.js';
import type { Logger } from '../logger.js';
import type { Metrics, OperationType } from './metrics.js';
import type { Tracing } from './tracing.js';

const OPERATION_TYPES = new Set<string>(['query', 'mutation', 'subscription']);

/** tessera_graphql_request_duration_seconds{operation_type}: from Apollo receiving the request to its response. */
export function metricsPlugin(metrics: Metrics): ApolloServerPlugin<GraphQLContext> {
  // One listener for every request; the start time rides on Apollo's request context (the same
  // object in every hook of a request), so a request costs no closure.
  const listener: GraphQLRequestListener<GraphQLContext> = {
    willSendResponse(requestContext) {
      const { operation } = requestContext;
      const type = operation && OPERATION_TYPES.has(operation.operation) ? (operation.operation as OperationType) : 'unknown';
      const started = (requestContext as unknown as Record<typeof STARTED, number | undefined>)[STARTED];
      if (started !== undefined) metrics.graphqlRequest(type, (performance.now() - started) / 1000);
      return DONE;
    },
  };
  const ready = Promise.resolve(listener);
  return {
    requestDidStart(requestContext) {
      (requestContext as unknown as Record<typeof STARTED, number>)[STARTED] = performance.now();
      return ready;
    },
  };
}

const STARTED = Symbol('tessera.requestStarted');
const DONE = Promise.resolve();

/** Names the operation span after the operation (`query Me`), once Apollo has parsed it. */
export function tracingPlugin(tracing: Tracing): ApolloServerPlugin<GraphQLContext> {
  return shared({
    async didResolveOperation({ operation, operationName }) {
      if (operation) tracing.describeOperation(operation.operation, operationName);
    },
  });
}

/** A plugin whose listener keeps no state per request: one listener (and one settled promise) for all of them. */
function shared(listener: GraphQLRequestListener<GraphQLContext>): ApolloServerPlugin<GraphQLContext> {
  const ready = Promise.resolve(listener);
  return { requestDidStart: () => ready };
}

/** Which request's logger logs a GraphQL error (formatError is not told the request). */
const errorLoggers = new WeakMap<object, Logger>();

/**
 * Remembers, for each error of a request, that request's logger, so that `formatError` logs it
 * with the request's id (see `loggerForError`).
 */
export function requestLogPlugin(): ApolloServerPlugin<GraphQLContext> {
  return shared({
    async didEncounterErrors({ errors, contextValue }) {
      // Errors met before the context was built (an unparsable body …) have no request logger.
      const logger = (contextValue as Partial<GraphQLContext> | undefined)?.logger;
      if (!logger) return;
      for (const error of errors) errorLoggers.set(error, logger);
    },
  });
}

/** The logger of the request that met `error`, or `fallback`. */
export function loggerForError(error: unknown, fallback: Logger): Logger {
  return (typeof error === 'object' && error !== null && errorLoggers.get(error)) || fallback;
}
