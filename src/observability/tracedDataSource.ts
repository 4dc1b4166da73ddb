/* eslint-disable @typescript-eslint/no-explicit-any -- @apollo/gateway types its contexts as Record<string, any> */
import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { Tracing } from './tracing.js';

type Options<C extends Record<string, any>> = GraphQLDataSourceProcessOptions<C>;

/**
 * A remote subgraph, traced: each call the gateway makes for an operation runs in a client span
 * `subgraph <name>`, and the request carries that span's W3C `traceparent`, so the subgraph's
 * own spans join the same trace. Schema loading and health checks (no operation) are not traced.
 */
export function tracedDataSource<C extends Record<string, any>>(inner: GraphQLDataSource<C>, name: string, url: string, tracing: Tracing): GraphQLDataSource<C> {
  const attributes = { 'tessera.subgraph': name, 'server.address': URL.canParse(url) ? new URL(url).hostname : 'unknown' };
  return {
    process(options: Options<C>) {
      if (!('incomingRequestContext' in options)) return inner.process(options);
      return tracing.clientSpan(`subgraph ${name}`, attributes, (traceHeaders) => {
        withHeaders(options, traceHeaders);
        return inner.process(options);
      });
    },
  };
}

/** Adds headers to the subgraph request (RemoteGraphQLDataSource copies `request.http.headers` into what it sends). */
function withHeaders<C extends Record<string, any>>(options: Options<C>, add: Record<string, string>): void {
  const request = options.request as { http?: { headers: { set(name: string, value: string): void } } };
  if (!request.http) request.http = { method: 'POST', url: '', headers: new Headers() } as unknown as typeof request.http;
  for (const [header, value] of Object.entries(add)) request.http!.headers.set(header, value);
}
