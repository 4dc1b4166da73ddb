import { badUserInput } from '../errors.js';
import { requireUser } from '../graphql/context.js';
import type { Resolvers } from '../graphql/generated/resolvers.js';
import type { SessionEventModel } from './types.js';

/**
 * The resolvers of schema/realtime.graphql, thin: the signed-in caller, then the connection's
 * session events (context.live, set only for an operation that came over WebSocket). Merged into
 * the schema's resolvers (and their error boundary) in src/graphql/resolvers.ts.
 */
export const realtimeResolvers = {
  Subscription: {
    sessionEvents: {
      subscribe: (_parent, _args, context) => {
        requireUser(context);
        if (!context.live) throw badUserInput('Subscriptions are served over WebSocket (graphql-transport-ws) at /graphql.');
        return context.live.sessionEvents();
      },
      // Over HTTP graphql-js would run `resolve` alone, with no event: say where subscriptions are served.
      resolve: (event: SessionEventModel | undefined) => {
        if (!event) throw badUserInput('Subscriptions are served over WebSocket (graphql-transport-ws) at /graphql.');
        return event;
      },
    },
  },
  SessionEvent: {
    time: (event) => new Date(event.time),
  },
} satisfies Pick<Resolvers, 'Subscription' | 'SessionEvent'>;
