import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type Context, handleProtocols, makeServer } from 'graphql-ws';
import { WebSocket, WebSocketServer } from 'ws';
import type { ClientInfo } from '../auth/authService.js';
import type { Clock } from '../clock.js';
import type { Config, RealtimeSettings } from '../config.js';
import { ErrorCode } from '../errors.js';
import type { GraphQLContext, RefreshCookieIntents, RequestScope } from '../graphql/context.js';
import type { ContextBuilder } from '../graphql/contextBuilder.js';
import { clientAddress } from '../http/clientAddress.js';
import type { OriginPolicy } from '../http/cors.js';
import { REQUEST_ID_HEADER, requestIdFrom } from '../http/requestId.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RevocationFeed } from '../revocation/revocationFeed.js';
import type { LiveEventFeed, SessionStore } from '../store/types.js';
import { LiveConnection, type LiveIdentity } from './liveConnection.js';
import { CloseCode, LiveHub } from './liveHub.js';
import type { OperationDoor } from './types.js';

export interface RealtimeDeps {
  settings: RealtimeSettings;
  /** The upgrade's Origin rule (src/http/cors.ts): none, the gateway's own (AUTH_ISSUER's) or one of CORS_ORIGINS. */
  origins: Pick<OriginPolicy, 'isAllowedOrigin'>;
  trustProxy: Config['trustProxy'];
  /** The largest frame accepted (MAX_BODY_BYTES, as for an HTTP body). */
  maxPayloadBytes: number;
  clockToleranceSec: number;
  /** SHUTDOWN_TIMEOUT: how long closing waits for operations in flight. */
  shutdownTimeoutMs: number;
  contexts: ContextBuilder;
  operations: OperationDoor;
  revocations: RevocationFeed;
  store: LiveEventFeed & Pick<SessionStore, 'getSessions'>;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
}

interface Extra {
  connection: LiveConnection;
  client: ClientInfo;
  scope: RequestScope;
  /** Query ids in flight (graceful shutdown waits for their answers). */
  queries: Set<string>;
}

/** `{ authorization: "Bearer …" }` in connection_init and in a renewal ping. */
type InitPayload = Record<string, unknown>;

const NO_COOKIES: RefreshCookieIntents = { setRefresh: () => undefined, clear: () => undefined };
/** How often each socket is pinged (a WebSocket ping frame); one that has not answered the last ping is dropped. */
const KEEPALIVE_MS = 15_000;
/** After the 1001 of a shutdown, how long a socket gets to answer the close before it is cut. */
const CLOSE_HANDSHAKE_MS = 1_000;

/**
 * GraphQL over WebSocket (graphql-transport-ws, docs/contract.md section 12) on `/graphql`, on the
 * HTTP server's port: the HTTP server hands it upgrade requests (`handleUpgrade`). It checks the
 * browser's Origin before upgrading, authenticates `connection_init` as an HTTP request is
 * (the ContextBuilder: access token service and revocation feed), renews in band on a `ping`
 * carrying a new token, runs operations through the GraphQL door (same schema, limits and error
 * formatting), and leaves to the LiveHub what ends a connection later (expiry, revocation).
 */
export class RealtimeServer {
  private readonly wss: WebSocketServer;
  private readonly hub: LiveHub;
  private readonly server;
  private accepting = true;
  private keepalive: NodeJS.Timeout | undefined;
  private readonly alive = new WeakSet<WebSocket>();
  private readonly inFlight = new WeakMap<WebSocket, Set<string>>();

  constructor(private readonly deps: RealtimeDeps) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: deps.maxPayloadBytes,
      perMessageDeflate: false,
      clientTracking: true,
      handleProtocols: (protocols) => handleProtocols(protocols) || false,
    });
    this.hub = new LiveHub({
      store: deps.store,
      revocations: deps.revocations,
      clock: deps.clock,
      clockToleranceMs: deps.clockToleranceSec * 1000,
      logger: deps.logger,
    });
    this.server = makeServer<InitPayload, Extra>({
      connectionInitWaitTimeout: deps.settings.initTimeoutMs,
      onConnect: (ctx) => this.connect(ctx),
      onPing: (ctx, payload) => this.renew(ctx, payload),
      onSubscribe: (ctx, id, payload) => this.subscribe(ctx, id, payload),
      onComplete: (ctx, id) => void ctx.extra.queries.delete(id),
      ...this.withQueryDone(deps.operations.hooks()),
    });
  }

  async start(): Promise<void> {
    await this.hub.start();
    this.keepalive = setInterval(() => this.ping(), KEEPALIVE_MS);
    this.keepalive.unref();
  }

  /** Open connections on this instance. */
  get connections(): number {
    return this.hub.size;
  }

  /** The HTTP server's `upgrade` event. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/graphql') return refuseUpgrade(socket, 404, 'Not Found');
    if (!this.accepting) return refuseUpgrade(socket, 503, 'Service Unavailable');
    // Cross-site WebSocket hijacking: a browser sends cookies with any site's handshake and no
    // preflight guards it, so the Origin is checked here, before the upgrade.
    if (!this.deps.origins.isAllowedOrigin(request.headers.origin)) {
      return refuseUpgrade(socket, 403, 'Forbidden');
    }
    this.wss.handleUpgrade(request, socket, head, (ws) => this.opened(ws, request));
  }

  private opened(ws: WebSocket, request: IncomingMessage): void {
    const connection = new LiveConnection(
      {
        close: (code, reason) => {
          if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(code, reason);
        },
      },
      (c, queue) => this.hub.subscribed(c, queue),
    );
    const extra: Extra = {
      connection,
      client: {
        userAgent: request.headers['user-agent']?.slice(0, 512) || null,
        ipAddress: clientAddress(request, this.deps.trustProxy),
      },
      scope: new ConnectionScope(requestIdFrom(request.headers[REQUEST_ID_HEADER]), this.deps.logger),
      queries: new Set(),
    };
    this.hub.add(connection);
    this.inFlight.set(ws, extra.queries);
    this.deps.metrics.wsConnections(1);
    this.alive.add(ws);
    ws.on('pong', () => this.alive.add(ws));
    ws.on('error', (error) => {
      extra.scope.logger.debug({ err: error }, 'websocket error');
      ws.terminate();
    });
    const closed = this.server.opened(
      {
        protocol: ws.protocol,
        send: (data) =>
          new Promise((resolve, reject) => {
            if (ws.readyState !== WebSocket.OPEN) return resolve();
            ws.send(data, (error) => (error ? reject(error) : resolve()));
          }),
        close: (code, reason) => connection.close(code ?? 1000, reason ?? ''),
        onMessage: (handle) =>
          ws.on('message', async (data: Buffer) => {
            try {
              await handle(data.toString('utf8'));
            } catch (error) {
              // A message graphql-ws could not handle (an unknown type passes parseMessage only if …
              // never; a send to a socket that closed meanwhile): the connection ends, the process does not.
              extra.scope.logger.debug({ err: error }, 'websocket message failed');
              connection.close(4400, 'Invalid message received');
            }
          }),
      },
      extra,
    );
    ws.once('close', (code, reason) => {
      this.hub.remove(connection);
      connection.ended();
      this.deps.metrics.wsConnections(-1);
      void closed(code, reason.toString()).catch((error: unknown) => extra.scope.logger.debug({ err: error }, 'websocket close hook failed'));
    });
  }

  /** connection_init: no authorization is anonymous; a bad one closes 4401; a store that cannot check it 1013. */
  private async connect(ctx: Context<InitPayload, Extra>): Promise<boolean> {
    const { connection } = ctx.extra;
    const authorization = ctx.connectionParams?.authorization;
    if (authorization === undefined || authorization === null) return true;
    const verdict = await this.identify(ctx.extra, authorization);
    if ('code' in verdict) {
      connection.close(verdict.code, verdict.reason);
      return false;
    }
    this.hub.signIn(connection, verdict);
    return true;
  }

  /** A ping with `{ authorization }` after connection_init: the same user and session, a new token. */
  private async renew(ctx: Context<InitPayload, Extra>, payload: Record<string, unknown> | undefined): Promise<void> {
    if (!ctx.acknowledged || !payload || payload.authorization === undefined) return;
    const { connection } = ctx.extra;
    const verdict = await this.identify(ctx.extra, payload.authorization);
    if ('code' in verdict) return connection.close(verdict.code, verdict.reason);
    const current = connection.identity;
    if (!current || current.userId !== verdict.userId || current.sessionId !== verdict.sessionId) {
      return connection.close(CloseCode.FORBIDDEN, 'RENEWAL_FOR_ANOTHER_SESSION');
    }
    this.hub.signIn(connection, verdict);
  }

  /** Who a bearer token proves, checked as for an HTTP request; or how to close. */
  private async identify(extra: Extra, authorization: unknown): Promise<LiveIdentity | { code: number; reason: string }> {
    if (typeof authorization !== 'string') return { code: CloseCode.UNAUTHORIZED, reason: 'TOKEN_INVALID' };
    let context: GraphQLContext;
    try {
      context = await this.context(extra, authorization);
    } catch (error) {
      extra.scope.logger.error({ err: error }, 'websocket authentication failed');
      return { code: CloseCode.TRY_AGAIN_LATER, reason: ErrorCode.SERVICE_UNAVAILABLE };
    }
    const user = context.user;
    if (!user) {
      const failure = context.authFailure;
      if (failure?.code === ErrorCode.SERVICE_UNAVAILABLE) return { code: CloseCode.TRY_AGAIN_LATER, reason: ErrorCode.SERVICE_UNAVAILABLE };
      return { code: CloseCode.UNAUTHORIZED, reason: failure?.reason ?? 'TOKEN_INVALID' };
    }
    return { userId: user.id, sessionId: user.sessionId, expiresAt: user.claims.exp * 1000, authorization, claims: user.claims };
  }

  private context(extra: Extra, authorization: string | undefined): Promise<GraphQLContext> {
    return this.deps.contexts.build({
      authorization,
      readRefreshCookie: () => null,
      cookies: NO_COOKIES,
      client: extra.client,
      request: extra.scope,
    });
  }

  private async subscribe(ctx: Context<InitPayload, Extra>, id: string, payload: Parameters<OperationDoor['execution']>[0]) {
    const { connection, queries } = ctx.extra;
    const { maxSubscriptions } = this.deps.settings;
    // graphql-ws has already entered this id.
    if (Object.keys(ctx.subscriptions).length > maxSubscriptions) {
      return this.deps.operations.refuse(`At most ${maxSubscriptions} operations may run at once on one connection.`, ErrorCode.BAD_USER_INPUT);
    }
    return this.deps.operations.execution(
      payload,
      async () => {
        const context = await this.context(ctx.extra, connection.identity?.authorization);
        // The connection rides along on a context of its own whose prototype is the request's.
        return Object.create(context, { live: { value: connection, enumerable: true } }) as GraphQLContext;
      },
      (kind) => {
        if (kind === 'query') queries.add(id);
      },
    );
  }

  /** A query refused or failed is done too (graceful shutdown waits for the answers of queries). */
  private withQueryDone(hooks: ReturnType<OperationDoor['hooks']>): ReturnType<OperationDoor['hooks']> {
    const onError = hooks.onError;
    return {
      ...hooks,
      onError: (ctx, id, payload, errors) => {
        (ctx.extra as Extra).queries.delete(id);
        return onError?.(ctx, id, payload, errors);
      },
    };
  }

  private ping(): void {
    for (const ws of this.wss.clients) {
      if (!this.alive.has(ws)) {
        ws.terminate();
        continue;
      }
      this.alive.delete(ws);
      ws.ping();
    }
  }

  /**
   * Graceful shutdown: no new connections; queries in flight get their answers (up to
   * SHUTDOWN_TIMEOUT); then every socket is closed with 1001, and cut if it does not answer.
   */
  async close(): Promise<void> {
    this.accepting = false;
    clearInterval(this.keepalive);
    this.hub.stop();
    const deadline = Date.now() + this.deps.shutdownTimeoutMs;
    while (Date.now() < deadline && [...this.wss.clients].some((ws) => this.queriesOf(ws) > 0)) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (const connection of this.hub.connections()) connection.close(CloseCode.GOING_AWAY, 'Going away');
    const sockets = [...this.wss.clients];
    await Promise.all(
      sockets.map(
        (ws) =>
          new Promise<void>((resolve) => {
            if (ws.readyState === WebSocket.CLOSED) return resolve();
            const cut = setTimeout(() => ws.terminate(), CLOSE_HANDSHAKE_MS);
            ws.once('close', () => {
              clearTimeout(cut);
              resolve();
            });
          }),
      ),
    );
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private queriesOf(ws: WebSocket): number {
    return this.inFlight.get(ws)?.size ?? 0;
  }
}

function refuseUpgrade(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** A connection's request id and logger, as an HTTP request's (src/http/requestId.ts). */
class ConnectionScope implements RequestScope {
  private child: Logger | undefined = undefined;

  constructor(
    readonly id: string,
    private readonly parent: Logger,
  ) {}

  get logger(): Logger {
    return (this.child ??= this.parent.child({ requestId: this.id }));
  }
}
