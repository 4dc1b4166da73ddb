import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { ClientInfo } from '../auth/authService.js';
import type { Config } from '../config.js';
import { ErrorCode } from '../errors.js';
import type { RefreshCookieIntents } from '../graphql/context.js';
import type { ContextBuilder } from '../graphql/contextBuilder.js';
import type { GraphQLEndpoint } from '../graphql/httpEndpoint.js';
import type { Logger } from '../logger.js';
import type { IdentityService } from '../identity/identityService.js';
import { clientAddress } from './clientAddress.js';
import { handleIdentityRoute, isIdentityPath } from './identityRoutes.js';
import { appendVary, applyCors, type OriginPolicy } from './cors.js';
import { GRAPHIQL_CSP, type GraphiQLFiles } from './graphiql.js';
import { clearRefreshCookie, cookieContext, readRefreshCookie, setRefreshCookie } from './refreshCookie.js';
import { beginRequest, type RequestScope, requestScope } from './requestId.js';
import { BodyTooLargeError, readBody } from './requestBody.js';

export interface HttpServerDeps {
  graphql: GraphQLEndpoint;
  contexts: ContextBuilder;
  jwks: () => unknown;
  /** Resolves when the store answers. */
  ready: () => Promise<void>;
  trustProxy: Config['trustProxy'];
  maxBodyBytes: number;
  /** 1: batched requests are refused (by Apollo); N > 1: at most N operations in one request. */
  maxBatchSize: number;
  /** CORS_ORIGINS and the gateway's own origin (cors.ts). */
  origins: OriginPolicy;
  /** GraphiQL's page and files (graphiql.ts); null in production: /graphiql is then 404. */
  graphiql: GraphiQLFiles | null;
  logger: Logger;
  /** Sign-in with other identity providers (`/auth/{id}/start`, `/auth/{id}/callback`); null: none configured. */
  identity?: IdentityService | null;
  /** WebSocket upgrades (GraphQL over WebSocket on /graphql: src/realtime). None: upgrades are refused. */
  upgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

function sendGraphQLError(res: ServerResponse, status: number, message: string, code: string = ErrorCode.BAD_USER_INPUT): void {
  sendJson(res, status, { errors: [{ message, extensions: { code } }] }, {
    'cache-control': 'no-store',
  });
}

/** Apollo's code for a malformed HTTP request. */
const BAD_REQUEST = 'BAD_REQUEST';

/**
 * The HTTP surface: GraphQL at /graphql, the JWKS, and health probes. A GraphQL response is
 * `Cache-Control: no-store`, except an anonymous one that Apollo's cache-control found cacheable
 * (gateway mode, from the subgraphs' hints): see `cacheControl`.
 */
export function createHttpServer(deps: HttpServerDeps): Server {
  const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => Promise<void> | void> = {
    '/graphql': (req, res) => (applyCors(deps.origins, req, res) ? undefined : handleGraphQL(deps, req, res)),
    '/.well-known/jwks.json': (_req, res) =>
      sendJson(res, 200, deps.jwks(), { 'cache-control': 'public, max-age=300' }),
    '/healthz': (_req, res) => sendJson(res, 200, { status: 'ok' }),
    '/readyz': async (_req, res) => {
      try {
        await deps.ready();
        sendJson(res, 200, { status: 'ready' });
      } catch {
        sendJson(res, 503, { status: 'unavailable', reason: 'the session store does not answer' });
      }
    },
  };
  for (const [path, file] of deps.graphiql ?? []) {
    routes[path] = (req, res) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
      res.writeHead(200, {
        'content-type': file.contentType,
        'content-length': file.body.length,
        'cache-control': 'no-cache',
        'x-content-type-options': 'nosniff',
        'content-security-policy': GRAPHIQL_CSP,
        'referrer-policy': 'no-referrer',
      });
      res.end(req.method === 'HEAD' ? undefined : file.body);
    };
  }
  const server = createServer((req, res) => {
    const scope = beginRequest(req, res, deps.logger);
    const path = (req.url ?? '/').split('?')[0]!;
    logRequest(deps.logger, scope, req, res, path);
    const identity = deps.identity;
    const route = routes[path] ?? (identity && isIdentityPath(path) ? (req: IncomingMessage, res: ServerResponse) => identityRoute(deps, identity, req, res, path) : undefined);
    if (!route) return sendJson(res, 404, { error: 'not found' });
    Promise.resolve(route(req, res)).catch((error: unknown) => {
      scope.logger.error({ err: error, path }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  const upgrade = deps.upgrade;
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (upgrade) return upgrade(req, socket, head);
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  return server;
}

function identityRoute(deps: HttpServerDeps, identity: IdentityService, req: IncomingMessage, res: ServerResponse, path: string) {
  const client: ClientInfo = { ...clientOfRequest(deps, req), requestId: requestScope(req).id };
  return handleIdentityRoute(identity, req, res, path, client, cookieContext(req.headers.host, overTls(req, deps.trustProxy)));
}

function clientOfRequest(deps: HttpServerDeps, req: IncomingMessage): ClientInfo {
  return { userAgent: req.headers['user-agent']?.slice(0, 512) || null, ipAddress: clientAddress(req, deps.trustProxy) };
}

async function handleGraphQL(deps: HttpServerDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let text: string;
  try {
    text = await readBody(req, deps.maxBodyBytes);
  } catch (error) {
    if (error instanceof BodyTooLargeError) {
      res.setHeader('connection', 'close');
      return sendGraphQLError(res, 413, `The request body is larger than ${error.limit} bytes.`);
    }
    throw error;
  }
  if (req.headers.authorization !== undefined && repeatsHeader(req.rawHeaders, 'authorization')) {
    // node:http keeps the first and drops the others: a proxy that reads the last one would
    // disagree about who the caller is.
    return sendGraphQLError(res, 400, 'The request has more than one Authorization header.', BAD_REQUEST);
  }
  let body: unknown = text;
  if ((req.headers['content-type'] ?? '').toLowerCase().startsWith('application/json') && text !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      return sendGraphQLError(res, 400, 'The request body is not valid JSON.');
    }
  }
  if (Array.isArray(body) && deps.maxBatchSize > 1 && body.length > deps.maxBatchSize) {
    return sendGraphQLError(res, 400, `A batch may hold at most ${deps.maxBatchSize} operations.`);
  }
  const client: ClientInfo = {
    userAgent: req.headers['user-agent']?.slice(0, 512) || null,
    ipAddress: clientAddress(req, deps.trustProxy),
  };
  // What the operations asked of the refresh cookie, as Set-Cookie lines in the order asked.
  const cookie = cookieContext(req.headers.host, overTls(req, deps.trustProxy));
  const setCookies: string[] = [];
  const cookies: RefreshCookieIntents = {
    setRefresh: (token, expiresAt, issuedAt) => setCookies.push(setRefreshCookie(token, expiresAt, issuedAt, cookie)),
    clear: () => setCookies.push(clearRefreshCookie(cookie)),
  };
  const result = await deps.graphql(
    { method: req.method ?? 'GET', headers: req.headers, search: searchOf(req.url), body },
    () =>
      deps.contexts.build({
        authorization: req.headers.authorization,
        readRefreshCookie: () => readRefreshCookie(req.headers.cookie ?? null, cookie),
        cookies,
        client,
        request: requestScope(req),
      }),
  );
  for (const [name, value] of result.headers) {
    if (name.toLowerCase() === 'vary') appendVary(res, value);
    else res.setHeader(name, value);
  }
  if (setCookies.length > 0) res.setHeader('set-cookie', setCookies);
  res.setHeader('cache-control', cacheControl(result.headers.get('cache-control'), req.headers.authorization, setCookies.length > 0));
  res.statusCode = result.status ?? 200;
  if (result.body.kind === 'complete') {
    res.end(result.body.string);
    return;
  }
  for await (const chunk of result.body.asyncIterator) res.write(chunk);
  res.end();
}

/**
 * Cache-Control of a GraphQL answer: Apollo's (set only when the cache-control plugin found the
 * answer cacheable, from the subgraphs' hints, and never for a request with an Authorization
 * header) for an answer that sets no cookie and went to a request without credentials; otherwise
 * `no-store`. So an answer that carries a token (and sets the refresh cookie, or answers a
 * mutation that reached the auth subgraph) is `no-store`, and one to a signed-in caller is never
 * `public`.
 */
function cacheControl(apollo: string | undefined, authorization: string | undefined, setsCookie: boolean): string {
  if (apollo === undefined || authorization !== undefined || setsCookie) return 'no-store';
  return apollo;
}

/** The header (lower case) appears more than once in the request. */
function repeatsHeader(raw: string[], name: string): boolean {
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const header = raw[i]!;
    if (header.length === name.length && header.toLowerCase() === name && ++seen > 1) return true;
  }
  return false;
}

/** TLS to this process, or (only through trusted proxies) X-Forwarded-Proto: https. */
function overTls(req: IncomingMessage, trust: Config['trustProxy']): boolean {
  if ((req.socket as TLSSocket).encrypted) return true;
  return trust.kind !== 'none' && req.headers['x-forwarded-proto'] === 'https';
}

/**
 * One line per request at info (method, path without its query string, status, time); the
 * headers only at debug, with credentials redacted by the logger.
 */
function logRequest(logger: Logger, scope: RequestScope, req: IncomingMessage, res: ServerResponse, path: string): void {
  if (!logger.isLevelEnabled('info')) return;
  const started = performance.now();
  if (logger.isLevelEnabled('debug')) scope.logger.debug({ req: { method: req.method, path, headers: req.headers } }, 'request');
  res.once('finish', () => {
    scope.logger.info(
      { method: req.method, path, status: res.statusCode, ms: Math.round(performance.now() - started) },
      'request done',
    );
  });
}

/** The query string with its `?` (what Apollo expects as `search`), without parsing a whole URL. */
function searchOf(url: string | undefined): string {
  const at = url?.indexOf('?') ?? -1;
  return at < 0 ? '' : url!.slice(at);
}
