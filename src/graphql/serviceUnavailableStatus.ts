import type { ApolloServerPlugin, GraphQLRequestListener } from '@apollo/server';
import { ErrorCode, StoreUnavailableError } from '../errors.js';

/** How far down an error's `originalError` chain to look (a gateway wraps a subgraph's error). */
const CHAIN_DEPTH = 5;

/** The error, or one it wraps, is the store being unavailable (or says SERVICE_UNAVAILABLE). */
function isServiceUnavailable(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < CHAIN_DEPTH && current instanceof Error; depth++) {
    if (current instanceof StoreUnavailableError) return true;
    if ((current as { extensions?: { code?: unknown } }).extensions?.code === ErrorCode.SERVICE_UNAVAILABLE) return true;
    current = (current as { originalError?: unknown }).originalError;
  }
  return false;
}

/**
 * Every answer that carries SERVICE_UNAVAILABLE has HTTP status 503, whatever the operation and
 * wherever the store failed: in a resolver (a StoreUnavailableError, which carries no status of its
 * own), while checking the caller's session, or in the in-process auth subgraph of a gateway.
 * Only requests with errors pay for it.
 */
export function serviceUnavailableStatusPlugin<TContext extends object>(): ApolloServerPlugin<TContext> {
  const listener: GraphQLRequestListener<TContext> = {
    async didEncounterErrors(requestContext) {
      if (requestContext.errors.some(isServiceUnavailable)) requestContext.response.http.status = 503;
    },
  };
  return { requestDidStart: async () => listener };
}
