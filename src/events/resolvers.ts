import { requireUser } from '../graphql/context.js';
import type { Resolvers } from '../graphql/generated/resolvers.js';

/**
 * The resolvers of schema/events.graphql, thin: the caller, then the SecurityEventService
 * (context.events). Merged into the schema's resolvers (and their error boundary) in
 * src/graphql/resolvers.ts.
 */
export const eventResolvers = {
  Query: {
    securityEvents: (_parent, { first, after }, context) => context.events.own(requireUser(context).id, { first, after }),
    auditEvents: (_parent, args, context) => context.events.audit(requireUser(context), args),
  },
  SecurityEvent: {
    time: (event) => new Date(event.time),
    ipAddress: (event) => event.ip,
    details: (event) => event.details,
  },
} satisfies Pick<Resolvers, 'Query' | 'SecurityEvent'>;
