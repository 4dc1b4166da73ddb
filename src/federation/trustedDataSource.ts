import { type GraphQLDataSourceProcessOptions, RemoteGraphQLDataSource } from '@apollo/gateway';
import type { GraphQLContext } from '../graphql/context.js';
import { REQUEST_ID_HEADER } from '../http/requestId.js';
import { CONTEXT_HEADER, type ContextTokenSigner } from '../tokens/contextTokens.js';

/**
 * Never sent to a subgraph as the client set them: the client's credentials, any forged context,
 * and the client's request id (the subgraph gets the gateway's checked one instead).
 */
const STRIPPED_HEADERS = [CONTEXT_HEADER, 'authorization', 'cookie', 'proxy-authorization', REQUEST_ID_HEADER];

/**
 * A remote subgraph. It never sees the client's bearer token or cookies; for a signed-in caller
 * every request carries `x-tessera-context`, a short-lived JWT addressed to this subgraph alone
 * (docs/contract.md section 6).
 */
export class TrustedContextDataSource extends RemoteGraphQLDataSource<GraphQLContext> {
  constructor(
    url: string,
    private readonly subgraphName: string,
    private readonly signer: ContextTokenSigner,
  ) {
    super({ url });
  }

  override async willSendRequest(options: GraphQLDataSourceProcessOptions<GraphQLContext>): Promise<void> {
    const headers = options.request.http?.headers;
    if (!headers) return;
    for (const name of STRIPPED_HEADERS) headers.delete(name);
    // Loading a schema or a health check: no caller.
    if (!('incomingRequestContext' in options)) return;
    // The id in the gateway's log lines and its response, so a subgraph's logs can be joined to them.
    if (options.context.requestId) headers.set(REQUEST_ID_HEADER, options.context.requestId);
    const user = options.context.user;
    if (!user) return;
    // The verified claims object itself: the signer keys its cache on it (one object per access token).
    headers.set(CONTEXT_HEADER, await this.signer.sign(user.claims, this.subgraphName));
  }
}
