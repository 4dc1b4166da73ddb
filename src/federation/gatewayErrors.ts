import { type GraphQLFormattedError } from 'graphql';
import { domainErrorOf } from '../graphql/errorBoundary.js';
import { EdgeAuthorizationError } from './authorizingGateway.js';
import { AUTH_SUBGRAPH } from './authSubgraph.js';

type FormatError = (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;

/** Codes that mean "something broke" rather than a subgraph's deliberate answer. */
const FAILURE_CODES = new Set<unknown>(['INTERNAL_SERVER_ERROR', 'DOWNSTREAM_SERVICE_ERROR', undefined]);

/**
 * Error formatting in gateway mode, on top of the standalone rules (`base`):
 * - an error of the in-process `auth` subgraph is shown exactly as standalone shows it (its code,
 *   its reason, no `serviceName`): the gateway wraps it, so the domain error is found in its chain;
 * - an edge-authorization denial (UNAUTHENTICATED / FORBIDDEN) is shown as it is;
 * - a remote subgraph's error that carries its own code (UNAUTHENTICATED, FORBIDDEN,
 *   BAD_USER_INPUT, …) is passed through, with `serviceName`, as @apollo/gateway does;
 * - anything else (a subgraph's internal error, a subgraph that cannot be reached) gets the
 *   standalone treatment: logged, and reduced to a generic message in production.
 */
export function createGatewayFormatError(base: FormatError): FormatError {
  return (formatted, error) => {
    // The gateway's own error (raised by the auth subgraph's resolvers), wrapped in the gateway's.
    const own = domainErrorOf(error);
    if (own) return withoutServiceName(base(formatted, own), AUTH_SUBGRAPH);
    if (error instanceof EdgeAuthorizationError) return formatted;
    const { serviceName, code } = formatted.extensions ?? {};
    if (typeof serviceName === 'string' && serviceName !== AUTH_SUBGRAPH && !FAILURE_CODES.has(code)) return formatted;
    return base(formatted, error);
  };
}

function withoutServiceName(formatted: GraphQLFormattedError, name: string): GraphQLFormattedError {
  if (formatted.extensions?.serviceName !== name) return formatted;
  const { serviceName: _dropped, ...extensions } = formatted.extensions;
  return { ...formatted, extensions };
}
