/**
 * `@tessera-gateway/client/apollo`: the link for Apollo Client 4 (the main entry never imports
 * `@apollo/client`, an optional peer dependency).
 */
import { HttpLink } from '@apollo/client';
import type { AuthClient } from './authClient.js';

export type TesseraLinkOptions = Omit<HttpLink.Options, 'fetch'>;

/**
 * An Apollo Client 4 terminating link to the gateway that sends each operation through the
 * client's `fetch`: `Authorization: Bearer` added (the token refreshed first when it is about to
 * expire), one retry after a refresh when the gateway answers `TOKEN_EXPIRED`, and the session
 * ended everywhere on `SESSION_REVOKED`. In cookie mode it sends credentials. Other HttpLink
 * options (headers, `uri` for another path on the gateway's origin, …) pass through.
 */
export function createApolloLink(client: AuthClient, options: TesseraLinkOptions = {}): HttpLink {
  return new HttpLink({
    uri: client.url,
    ...(client.transport === 'cookie' ? { credentials: 'include' } : {}),
    ...options,
    fetch: client.fetch,
  });
}
