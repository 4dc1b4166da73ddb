import type { ClientInfo } from '../auth/authService.js';
import type { GraphQLContext } from './context.js';

/**
 * The client of the request as the services record it in security events: its address and
 * User-Agent, and its request id when the context carries one (`requestId`, set by the HTTP
 * layer's request-id handling).
 */
export function clientOf(context: GraphQLContext): ClientInfo {
  const requestId = (context as { requestId?: unknown }).requestId;
  return typeof requestId === 'string' && requestId !== '' ? { ...context.client, requestId } : context.client;
}
