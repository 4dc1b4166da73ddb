import type { FetchLike } from './environment.js';

/** The gateway's error reasons the client acts on (docs/contract.md section 4). */
export const REFRESH_FAILURES = new Set(['REFRESH_TOKEN_INVALID', 'REFRESH_TOKEN_EXPIRED', 'REFRESH_TOKEN_REUSED']);

export interface GraphQLError {
  message: string;
  path?: (string | number)[];
  extensions?: { code?: string; reason?: string; [key: string]: unknown };
}

export interface GraphQLResult<T> {
  data?: T | null;
  errors?: GraphQLError[];
}

export interface User {
  id: string;
  email: string;
  roles: string[];
  createdAt: string;
}

export interface SessionInfo {
  id: string;
  createdAt: string;
  lastRefreshedAt: string;
  expiresAt: string;
  userAgent: string | null;
  ipAddress: string | null;
  current: boolean;
}

export interface AuthPayload {
  accessToken: string;
  refreshToken: string | null;
  user: User;
  session: SessionInfo;
}

const PAYLOAD = 'accessToken refreshToken user { id email roles createdAt } session { id createdAt lastRefreshedAt expiresAt userAgent ipAddress current }';

export const LOGIN = `mutation TesseraLogin($email: String!, $password: String!) { login(email: $email, password: $password) { ${PAYLOAD} } }`;
export const SIGNUP = `mutation TesseraSignup($email: String!, $password: String!) { signup(email: $email, password: $password) { ${PAYLOAD} } }`;
export const REFRESH = `mutation TesseraRefresh($refreshToken: String) { refreshToken(refreshToken: $refreshToken) { ${PAYLOAD} } }`;
export const REVOKE_CURRENT = 'mutation TesseraLogout { revokeSession }';
export const REVOKE_ALL = 'mutation TesseraLogoutEverywhere { revokeAllSessions }';

/** An error of the gateway (its `extensions.code` and `reason`), or of the way to it (`NETWORK_ERROR`, `BAD_RESPONSE`). */
export class AuthClientError extends Error {
  readonly code: string;
  readonly reason: string | undefined;
  readonly extensions: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, reason?: string, extensions: Readonly<Record<string, unknown>> = {}) {
    super(message);
    this.name = 'AuthClientError';
    this.code = code;
    this.reason = reason;
    this.extensions = extensions;
  }

  static from(error: GraphQLError): AuthClientError {
    const extensions = error.extensions ?? {};
    return new AuthClientError(String(extensions.code ?? 'INTERNAL_SERVER_ERROR'), error.message, extensions.reason, extensions);
  }
}

/** One POST of a GraphQL operation (JSON, so browsers preflight it and Apollo's CSRF prevention lets it through). */
export async function postOperation<T>(
  fetchImpl: FetchLike,
  url: string,
  query: string,
  variables: Record<string, unknown>,
  options: { token?: string | null; cookies: boolean },
): Promise<GraphQLResult<T>> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let response: Response;
  try {
    response = await fetchImpl(url, {
      method: 'POST',
      headers,
      body: JSON.stringify({ query, variables }),
      credentials: options.cookies ? 'include' : 'same-origin',
    });
  } catch (error) {
    throw new AuthClientError('NETWORK_ERROR', `The gateway could not be reached: ${(error as Error)?.message ?? String(error)}`);
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    throw new AuthClientError('BAD_RESPONSE', `The gateway answered HTTP ${response.status} without a GraphQL result.`);
  }
  if (typeof body !== 'object' || body === null) throw new AuthClientError('BAD_RESPONSE', `The gateway answered HTTP ${response.status} without a GraphQL result.`);
  return body as GraphQLResult<T>;
}

/** The first error's reason, when it is one of an auth failure. */
export function reasonOf(result: GraphQLResult<unknown>): string | undefined {
  const reason = result.errors?.find((error) => error.extensions?.reason !== undefined)?.extensions?.reason;
  return typeof reason === 'string' ? reason : undefined;
}
