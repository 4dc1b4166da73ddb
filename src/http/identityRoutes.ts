import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClientInfo } from '../auth/authService.js';
import type { FlowAnswer, IdentityService } from '../identity/identityService.js';
import { STATE_TTL_MS } from '../identity/identityService.js';
import type { CookieContext } from './refreshCookie.js';

/**
 * `GET /auth/{id}/start` and `GET /auth/{id}/callback` (docs/contract.md section 9), thin: the
 * path, the query and the browser's binding cookie in; IdentityService decides; the answer out.
 *
 * The binding cookie ties a flow's state to the browser that started it: a random value, its
 * hash kept with the state, so a state link opened in another browser is refused. `__Host-`
 * (Secure, Path=/, no Domain), HttpOnly, SameSite=Lax (the callback is a top-level navigation
 * from the provider's site, which a Strict cookie would not reach).
 */
export const SECURE_BINDING_COOKIE = '__Host-tessera_idp';
export const DEV_BINDING_COOKIE = 'tessera_idp';

const ROUTE = /^\/auth\/([a-z0-9][a-z0-9_-]{0,62})\/(start|callback)$/;

export function isIdentityPath(path: string): boolean {
  return path.startsWith('/auth/');
}

export async function handleIdentityRoute(
  identity: IdentityService,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  client: ClientInfo,
  cookie: CookieContext,
): Promise<void> {
  const match = ROUTE.exec(path);
  if (!match || !identity.hasProvider(match[1]!)) return send(res, { kind: 'not_found' }, cookie);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET', 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify({ error: 'method_not_allowed' }));
    return;
  }
  const [, providerId, step] = match as unknown as [string, string, 'start' | 'callback'];
  const query = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
  const binding = readBinding(req.headers.cookie, cookie);
  if (step === 'start') {
    return send(res, await identity.start(providerId, single(query, 'redirect_uri'), single(query, 'ticket'), binding), cookie);
  }
  // The URL the provider sent the browser to, rebuilt on AUTH_ISSUER (never on the Host header).
  const url = new URL(identity.callbackUrl(providerId));
  url.search = query.toString();
  return send(res, await identity.callback(providerId, url, binding, client), cookie);
}

/** A parameter given exactly once (a repeated one is refused as absent). */
function single(query: URLSearchParams, name: string): string | null {
  const all = query.getAll(name);
  return all.length === 1 ? all[0]! : null;
}

function send(res: ServerResponse, answer: FlowAnswer, cookie: CookieContext): void {
  const common = { 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' };
  if (answer.kind === 'not_found') {
    res.writeHead(404, { ...common, 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify({ error: 'not found' }));
    return;
  }
  if (answer.kind === 'unavailable') {
    res.writeHead(503, { ...common, 'content-type': 'application/json; charset=utf-8', 'retry-after': '1' });
    res.end(JSON.stringify({ error: 'temporarily_unavailable' }));
    return;
  }
  if (answer.kind === 'bad_request') {
    res.writeHead(400, { ...common, 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify({ error: answer.error, message: answer.message }));
    return;
  }
  const headers: Record<string, string | string[]> = { ...common, location: answer.location };
  if (answer.binding) headers['set-cookie'] = bindingCookie(answer.binding, cookie);
  res.writeHead(302, headers);
  res.end();
}

function cookieName(context: CookieContext): string {
  return context.secure ? SECURE_BINDING_COOKIE : DEV_BINDING_COOKIE;
}

function bindingCookie(value: string, context: CookieContext): string {
  const secure = context.secure ? '; Secure' : '';
  return `${cookieName(context)}=${value}; Path=/; HttpOnly${secure}; SameSite=Lax; Max-Age=${Math.floor(STATE_TTL_MS / 1000)}`;
}

function readBinding(header: string | undefined, context: CookieContext): string | null {
  if (!header) return null;
  const wanted = cookieName(context);
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === wanted) return part.slice(at + 1).trim();
  }
  return null;
}
