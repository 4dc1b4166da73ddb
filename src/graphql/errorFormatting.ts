import { unwrapResolverError } from '@apollo/server/errors';
import type { GraphQLFormattedError } from 'graphql';
import { ErrorCode, StoreUnavailableError, TesseraError } from '../errors.js';
import type { Logger } from '../logger.js';
import { domainErrorOf } from './errorBoundary.js';
import { loggerForError } from '../observability/graphqlPlugins.js';

/**
 * Apollo's own codes for what Apollo detects in a request (a syntax error, a document that does not
 * validate, an unknown persisted query, a malformed HTTP request …): shown as Apollo sets them,
 * since clients and tools key on them.
 */
const APOLLO_REQUEST_CODES = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'BAD_USER_INPUT',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
]);

/**
 * Every error a client sees carries a contract code; an unexpected error is logged and, in
 * production, reduced to a generic message with no internal detail.
 */
export function createFormatError(production: boolean, logger: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const domain = domainErrorOf(unwrapResolverError(error));
    if (domain instanceof TesseraError) return formatted;
    if (domain instanceof StoreUnavailableError) {
      loggerForError(error, logger).warn({ err: domain.cause }, 'store unavailable');
      return withCode(formatted, ErrorCode.SERVICE_UNAVAILABLE, 'The service is temporarily unavailable.');
    }
    const code = formatted.extensions?.code;
    if (typeof code === 'string' && APOLLO_REQUEST_CODES.has(code)) return formatted;
    loggerForError(error, logger).error({ err: unwrapResolverError(error) }, 'unexpected error in a GraphQL operation');
    if (production) return { message: 'Internal server error', extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR } };
    return withCode(formatted, ErrorCode.INTERNAL_SERVER_ERROR, formatted.message);
  };
}

function withCode(formatted: GraphQLFormattedError, code: string, message: string): GraphQLFormattedError {
  const { stacktrace, ...rest } = formatted.extensions ?? {};
  return {
    ...formatted,
    message,
    extensions: { ...rest, code, ...(stacktrace === undefined ? {} : { stacktrace }) },
  };
}
