import { type ApolloServer, HeaderMap } from '@apollo/server';
import type { GraphQLContext } from './context.js';

/** One GraphQL-over-HTTP request, as the HTTP layer read it. */
export interface GraphQLHttpRequest {
  method: string;
  /** Node's request headers (lower-case names). */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The query string with its `?`, or ''. */
  search: string;
  /** The parsed JSON body, or the body's text. */
  body: unknown;
}

/** The answer to write: status (unset: 200), headers, and the body whole or in chunks. */
export interface GraphQLHttpResponse {
  status?: number | undefined;
  headers: ReadonlyMap<string, string>;
  body: { kind: 'complete'; string: string } | { kind: 'chunked'; asyncIterator: AsyncIterableIterator<string> };
}

/** Runs one request's operations with the context made for it. */
export type GraphQLEndpoint = (
  request: GraphQLHttpRequest,
  context: () => Promise<GraphQLContext>,
) => Promise<GraphQLHttpResponse>;

/**
 * The Apollo Server behind the HTTP layer, which so needs no Apollo type of its own: headers go
 * in as Apollo's HeaderMap (repeated ones joined with `, `), the answer comes back as it is.
 */
export function apolloEndpoint(apollo: ApolloServer<GraphQLContext>): GraphQLEndpoint {
  return (request, context) => {
    const headers = new HeaderMap();
    for (const [name, value] of Object.entries(request.headers)) {
      if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
    }
    return apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: request.method, headers, search: request.search, body: request.body },
      context,
    });
  };
}
