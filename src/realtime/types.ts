import type { ServerOptions, SubscribePayload } from 'graphql-ws';
import type { GraphQLContext } from '../graphql/context.js';
import type { AccessTokenClaims } from '../tokens/types.js';

/** The `SessionEvent` of schema/realtime.graphql, as the realtime hub makes it. */
export type SessionEventType = 'SIGNED_IN_ELSEWHERE' | 'SESSION_REVOKED' | 'PASSWORD_CHANGED' | 'ACCESS_TOKEN_EXPIRING';

export interface SessionEventModel {
  type: SessionEventType;
  /** Epoch ms. */
  time: number;
  sessionId: string | null;
  userAgent: string | null;
  ipAddress: string | null;
}

/**
 * What a WebSocket operation's context carries besides the usual GraphQL context: the live
 * connection it runs on, which hands out the caller's session events.
 */
export interface LiveChannel {
  /** The session events of this connection's user and session, until the subscription ends. */
  sessionEvents(): AsyncIterableIterator<SessionEventModel>;
  /** The claims of the connection's current access token (renewals replace it); null when anonymous. */
  currentClaims(): AccessTokenClaims | null;
}

/** What graphql-ws runs for a `subscribe` message: execution arguments, or the errors that refuse it. */
export type OperationVerdict = Exclude<Awaited<ReturnType<NonNullable<ServerOptions['onSubscribe']>>>, void>;

/**
 * The door from the WebSocket server into GraphQL (src/graphql/wsOperations.ts standalone;
 * src/federation in gateway mode): src/realtime does not import graphql itself.
 */
export interface OperationDoor {
  execution(payload: SubscribePayload, context: () => Promise<GraphQLContext>, kind?: (kind: string) => void): Promise<OperationVerdict>;
  refuse(message: string, code: string): OperationVerdict;
  hooks(): Pick<ServerOptions, 'onNext' | 'onError' | 'subscribe'>;
}
