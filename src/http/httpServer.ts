import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { type ApolloServer, HeaderMap } from '@apollo/server';
import type { ClientInfo } from '../auth/authService.js';
import type { Config } from '../config.js';
import { ErrorCode } from '../errors.js';
import type { GraphQLContext, ResponseHeaders } from '../graphql/context.js';
import type { ContextBuilder } from '../graphql/contextBuilder.js';
import type { Logger } from '../logger.js';
import { clientAddress } from './clientAddress.js';
import { cookieContext } from './refreshCookie.js';
import { beginRequest, type RequestScope, requestScope } from './requestId.js';
import { BodyTooLargeError, readBody } from './requestBody.js';

export interface HttpServerDeps {
  apollo: ApolloServer<GraphQLContext>;
  contexts: ContextBuilder;
  jwks: () => unknown;
  /** Resolves when the store answers. */
  ready: () => Promise<void>;
  trustProxy: Config['trustProxy'];
  maxBodyBytes: number;
  /** 1: batched requests are refused (by Apollo); N > 1: at most N operations in one request. */
  maxBatchSize: number;
  logger: Logger;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

function sendGraphQLError(res: ServerResponse, status: number, message: string): void {
  sendJson(res, status, { errors: [{ message, extensions: { code: ErrorCode.BAD_USER_INPUT } }] }, {
    'cache-control': 'no-store',
  });
}

/**
 * The HTTP surface: GraphQL at /graphql, the JWKS, and health probes. Every GraphQL response is
 * `Cache-Control: no-store` (they carry tokens or per-user data).
 */
export function createHttpServer(deps: HttpServerDeps): Server {
  const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => Promise<void> | void> = {
    '/graphql': (req, res) => handleGraphQL(deps, req, res),
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
  return createServer((req, res) => {
    const scope = beginRequest(req, res, deps.logger);
    const path = (req.url ?? '/').split('?')[0]!;
    logRequest(deps.logger, scope, req, res, path);
    const route = routes[path];
    if (!route) return sendJson(res, 404, { error: 'not found' });
    Promise.resolve(route(req, res)).catch((error: unknown) => {
      scope.logger.error({ err: error, path }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
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
  const headers = new HeaderMap();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  let body: unknown = text;
  if ((headers.get('content-type') ?? '').toLowerCase().startsWith('application/json') && text !== '') {
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
  const responseHeaders = new HeaderMap();
  const response: ResponseHeaders = {
    append: (name, value) => {
      const key = name.toLowerCase();
      const prior = responseHeaders.get(key);
      responseHeaders.set(key, prior ? `${prior}\n${value}` : value);
    },
  };
  const result = await deps.apollo.executeHTTPGraphQLRequest({
    httpGraphQLRequest: { method: req.method ?? 'GET', headers, search: searchOf(req.url), body },
    context: () =>
      deps.contexts.build({
        authorization: req.headers.authorization,
        cookie: req.headers.cookie,
        cookies: cookieContext(req.headers.host, overTls(req, deps.trustProxy)),
        client,
        response,
        request: requestScope(req),
      }),
  });
  for (const [name, value] of result.headers) res.setHeader(name, value);
  for (const [name, value] of responseHeaders) res.setHeader(name, name === 'set-cookie' ? value.split('\n') : value);
  res.setHeader('cache-control', 'no-store');
  res.statusCode = result.status ?? 200;
  if (result.body.kind === 'complete') {
    res.end(result.body.string);
    return;
  }
  for await (const chunk of result.body.asyncIterator) res.write(chunk);
  res.end();
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
