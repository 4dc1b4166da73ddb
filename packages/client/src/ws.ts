/**
 * `@tessera-gateway/client/ws`: GraphQL subscriptions over WebSocket (`graphql-transport-ws`)
 * signed in with the auth client. The app passes graphql-ws's own `createClient` (graphql-ws is
 * an optional peer dependency: this file imports only its types).
 */
import type { Client, ClientOptions, createClient as CreateClient } from 'graphql-ws';
import { type AuthClient, endRevokedSession } from './authClient.js';

export interface SubscriptionClientOptions extends Omit<ClientOptions, 'url' | 'connectionParams' | 'webSocketImpl'> {
  /** graphql-ws's `createClient`. */
  createClient: typeof CreateClient;
  /** Default: the auth client's URL with `ws(s):` for `http(s):`. */
  url?: string;
  /** Default: the global `WebSocket` (pass `ws`'s in Node). */
  webSocketImpl?: unknown;
}

/** The close codes of the gateway (contract section 12). */
const UNAUTHORIZED = 4401;
const FORBIDDEN = 4403;

interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
}

type SocketClass = new (url: string, protocols?: string | string[]) => object;

/**
 * A graphql-ws client for the gateway that
 * - opens with `connectionParams` `{ authorization: 'Bearer <token>' }` (refreshed first when expiring; none when signed out);
 * - after each renewal of the access token sends the in-band renewal `ping` `{ authorization: 'Bearer <new token>' }`;
 * - on a close 4403 (session revoked) ends the session in the auth client (`onSessionEnded` fires) and does not reconnect;
 * - on a close 4401 (token expired or refused) refreshes and reconnects once (graphql-ws itself takes 4401 as fatal);
 * - when the session ends (logout, here or in another tab) disposes of itself (closes the socket).
 * A sign-in with another session meanwhile reconnects with the new token.
 */
export function createSubscriptionClient(auth: AuthClient, options: SubscriptionClientOptions): Client {
  const { createClient, url, webSocketImpl, shouldRetry, on, ...rest } = options;
  const Base = (webSocketImpl ?? (globalThis as { WebSocket?: unknown }).WebSocket) as SocketClass | undefined;
  if (typeof Base !== 'function') throw new TypeError('createSubscriptionClient: no WebSocket available; pass options.webSocketImpl');

  let socket: SocketLike | null = null;
  /** The session and token the current connection was opened (or last renewed) with. */
  let sessionId: string | undefined;
  let token: string | null = null;
  /** A 4401 was seen: the next connection refreshes first; a second 4401 in a row is fatal. */
  let refreshNext = false;
  let disposed = false;

  /**
   * The app's WebSocket with one change graphql-ws sees: the first 4401 after a working
   * connection is reported as retryable (graphql-ws gives up on 4401), so it reconnects, after a refresh.
   */
  type CloseListener = (event: { code: number; reason: string }) => void;
  const base = Base;
  class Socket extends base {
    set onclose(listener: CloseListener | null) {
      const wrapped: CloseListener | null =
        listener === null
          ? null
          : (event) => {
              if (event.code === UNAUTHORIZED && !refreshNext && !disposed && auth.session) {
                refreshNext = true;
                listener({ code: 4499, reason: event.reason, wasClean: true } as typeof event);
                return;
              }
              listener(event);
            };
      Reflect.set(base.prototype, 'onclose', wrapped, this);
    }
    get onclose(): CloseListener | null {
      return Reflect.get(base.prototype, 'onclose', this) as CloseListener | null;
    }
  }

  const client = createClient({
    ...rest,
    url: url ?? auth.url.replace(/^http/, 'ws'),
    webSocketImpl: Socket,
    connectionParams: async () => {
      if (refreshNext) await auth.refresh().catch(() => null);
      token = await auth.getAccessToken();
      sessionId = auth.session?.sessionId;
      return token ? { authorization: `Bearer ${token}` } : {};
    },
    shouldRetry: (closed) => {
      if (disposed || (isClose(closed) && closed.code === FORBIDDEN)) return false;
      return shouldRetry ? shouldRetry(closed) : isClose(closed);
    },
    on: {
      ...on,
      connected: (connected, payload, wasRetry) => {
        socket = connected as SocketLike;
        refreshNext = false;
        on?.connected?.(connected, payload, wasRetry);
      },
      closed: (event) => {
        socket = null;
        if (isClose(event) && event.code === FORBIDDEN && sessionId) endRevokedSession(auth, sessionId);
        on?.closed?.(event);
      },
    },
  });

  const stopChange = auth.onChange((session) => {
    if (!session) return stop();
    void auth.getAccessToken().then((next) => {
      if (disposed || !next || next === token) return;
      if (session.sessionId !== sessionId) {
        // Another session now (a sign-in in another tab): a new connection with its token.
        if (socket) client.terminate();
        return;
      }
      if (socket && socket.readyState === 1) {
        token = next;
        socket.send(JSON.stringify({ type: 'ping', payload: { authorization: `Bearer ${next}` } }));
      }
    });
  });
  const stopEnded = auth.onSessionEnded(() => stop());

  function stop(): void {
    if (disposed) return;
    disposed = true;
    stopChange();
    stopEnded();
    void client.dispose();
  }

  const dispose = client.dispose.bind(client);
  return Object.assign(client, {
    dispose: () => {
      disposed = true;
      stopChange();
      stopEnded();
      return dispose();
    },
  });
}

function isClose(value: unknown): value is { code: number; reason: string } {
  return typeof value === 'object' && value !== null && 'code' in value && typeof (value as { code: unknown }).code === 'number';
}
