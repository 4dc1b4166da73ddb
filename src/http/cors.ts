import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * CORS on `/graphql` (docs/contract.md section 11) and the Origin rule the WebSocket upgrade
 * shares (section 12).
 *
 * - A listed origin (CORS_ORIGINS, exact match) gets `Access-Control-Allow-Origin: <origin>` and
 *   `Access-Control-Allow-Credentials: true`; a preflight from it asking only for GET/POST and the
 *   headers Apollo clients send is answered 204 with the grant.
 * - Any other origin, `Origin: null` included, gets no CORS header at all; a preflight asking for
 *   another method or header gets no grant. The browser then refuses, and the request never runs.
 * - Every answer of the route carries `Vary: Origin`, so a cache keeps the answers apart.
 *
 * CSRF stays Apollo's: a cross-origin request that needs no preflight (a form post, text/plain)
 * is refused by Apollo's CSRF prevention before any resolver runs.
 */

/** The methods a preflight may ask for. */
export const CORS_METHODS = ['GET', 'POST'] as const;

/**
 * The request headers a preflight may ask for: what Apollo clients send (Apollo Client 4's
 * HttpLink adds `apollographql-client-name`/`-version` when `clientAwareness` is set), and a
 * request id to follow a call through the logs.
 */
export const CORS_REQUEST_HEADERS = [
  'content-type',
  'authorization',
  'apollo-require-preflight',
  'x-apollo-operation-name',
  'apollographql-client-name',
  'apollographql-client-version',
  'x-request-id',
] as const;

/** How long (seconds) a browser may reuse a preflight's answer. */
export const CORS_MAX_AGE_SECONDS = 600;

export interface OriginPolicy {
  /** The origins of CORS_ORIGINS, normalized (`scheme://host[:port]`, lower case, no default port). */
  readonly listed: readonly string[];
  /** The gateway's own origin: AUTH_ISSUER's. */
  readonly own: string;
  /** CORS: `origin` is exactly one of CORS_ORIGINS (`null` never is). */
  isListedOrigin(origin: string | undefined): boolean;
  /**
   * The WebSocket upgrade's rule (section 12): no Origin header (not a browser), the gateway's own
   * origin, or a listed one. `null` and every other origin are refused.
   */
  isAllowedOrigin(origin: string | undefined): boolean;
}

export function originPolicy(options: { origins: readonly string[]; issuer: string }): OriginPolicy {
  const listed = new Set(options.origins);
  const own = new URL(options.issuer).origin;
  const isListedOrigin = (origin: string | undefined): boolean => origin !== undefined && origin !== 'null' && listed.has(origin);
  return {
    listed: [...listed],
    own,
    isListedOrigin,
    isAllowedOrigin: (origin) => origin === undefined || (origin !== 'null' && (origin === own || isListedOrigin(origin))),
  };
}

/** Adds `value` to the response's Vary header, keeping what is there. */
export function appendVary(res: ServerResponse, value: string): void {
  const current = res.getHeader('vary');
  const parts = (Array.isArray(current) ? current.join(',') : current === undefined ? '' : String(current))
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  if (parts.some((part) => part === '*' || part.toLowerCase() === value.toLowerCase())) return;
  res.setHeader('vary', [...parts, value].join(', '));
}

const METHODS = new Set<string>(CORS_METHODS);
const REQUEST_HEADERS = new Set<string>(CORS_REQUEST_HEADERS);

/** The requested headers are all in the list (an empty request asks for none). */
function headersAllowed(requested: string | string[] | undefined): boolean {
  if (requested === undefined) return true;
  const text = Array.isArray(requested) ? requested.join(',') : requested;
  return text
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '')
    .every((name) => REQUEST_HEADERS.has(name));
}

/**
 * Applies CORS to one request of `/graphql`. Returns true when the request was a preflight
 * (OPTIONS) and has been answered (204, with or without a grant); false when the request goes on
 * to GraphQL, with the CORS headers of its answer already set.
 */
export function applyCors(policy: OriginPolicy, req: IncomingMessage, res: ServerResponse): boolean {
  const origin = req.headers.origin;
  const listed = policy.isListedOrigin(origin);
  appendVary(res, 'Origin');
  if (req.method === 'OPTIONS') {
    appendVary(res, 'Access-Control-Request-Method');
    appendVary(res, 'Access-Control-Request-Headers');
    const method = req.headers['access-control-request-method'];
    if (listed && method !== undefined && METHODS.has(method) && headersAllowed(req.headers['access-control-request-headers'])) {
      res.setHeader('access-control-allow-origin', origin!);
      res.setHeader('access-control-allow-credentials', 'true');
      res.setHeader('access-control-allow-methods', CORS_METHODS.join(', '));
      res.setHeader('access-control-allow-headers', CORS_REQUEST_HEADERS.join(', '));
      res.setHeader('access-control-max-age', String(CORS_MAX_AGE_SECONDS));
    }
    res.writeHead(204);
    res.end();
    return true;
  }
  if (listed) {
    res.setHeader('access-control-allow-origin', origin!);
    res.setHeader('access-control-allow-credentials', 'true');
    res.setHeader('access-control-expose-headers', 'x-request-id');
  }
  return false;
}
