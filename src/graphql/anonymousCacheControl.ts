import type { ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginCacheControl } from '@apollo/server/plugin/cacheControl';

/**
 * Apollo's cache-control plugin (the overall policy of the subgraphs' Cache-Control hints, as
 * `max-age=N, public|private`), run only for requests without an `Authorization` header: only an
 * anonymous answer may be cached by others, so the signed-in calls of the warm path pay nothing.
 * It sets the header only when the answer is cacheable (and has no errors); the HTTP layer makes
 * every other answer `no-store` (src/http/httpServer.ts).
 *
 * Install it next to `ApolloServerPluginCacheControlDisabled()`, which keeps Apollo from adding its
 * own copy for every request.
 */
export function anonymousCacheControlPlugin<TContext extends object>(): ApolloServerPlugin<TContext> {
  const inner = ApolloServerPluginCacheControl({ calculateHttpHeaders: 'if-cacheable' }) as ApolloServerPlugin<TContext>;
  return {
    serverWillStart: async (service) => inner.serverWillStart?.(service),
    requestDidStart: async (requestContext) =>
      requestContext.request.http?.headers.has('authorization') ? undefined : inner.requestDidStart?.(requestContext),
  };
}
