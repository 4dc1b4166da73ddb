/**
 * The refresh-token cookie (REFRESH_TOKEN_TRANSPORT=cookie|both): HttpOnly, Secure,
 * SameSite=Strict, `__Host-` prefixed (so Path=/ and no Domain). Only a request over plain HTTP
 * to localhost gets a development cookie without Secure (browsers drop Secure cookies there).
 */
export const SECURE_REFRESH_COOKIE = '__Host-tessera_refresh';
export const DEV_REFRESH_COOKIE = 'tessera_refresh';

export interface CookieContext {
  /** False only for plain HTTP to localhost. */
  secure: boolean;
}

function attributes(context: CookieContext, maxAgeSeconds: number): string {
  const secure = context.secure ? '; Secure' : '';
  return `Path=/; HttpOnly${secure}; SameSite=Strict; Max-Age=${maxAgeSeconds}`;
}

function name(context: CookieContext): string {
  return context.secure ? SECURE_REFRESH_COOKIE : DEV_REFRESH_COOKIE;
}

export function setRefreshCookie(token: string, expiresAt: number, now: number, context: CookieContext): string {
  const maxAge = Math.max(0, Math.floor((expiresAt - now) / 1000));
  return `${name(context)}=${token}; ${attributes(context, maxAge)}`;
}

export function clearRefreshCookie(context: CookieContext): string {
  return `${name(context)}=; ${attributes(context, 0)}`;
}

/** The refresh token from a Cookie header (the secure name wins over the development one). */
export function readRefreshCookie(header: string | null, context: CookieContext): string | null {
  if (!header) return null;
  const cookies = new Map<string, string>();
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at > 0) cookies.set(part.slice(0, at).trim(), part.slice(at + 1).trim());
  }
  const secure = cookies.get(SECURE_REFRESH_COOKIE);
  if (secure) return secure;
  return context.secure ? null : (cookies.get(DEV_REFRESH_COOKIE) ?? null);
}

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** A request is "plain HTTP to localhost" when it came over no TLS (as far as trusted proxies say) to a local host name. */
export function cookieContext(host: string | undefined, overTls: boolean): CookieContext {
  const hostname = (host ?? '').replace(/:\d+$/, '').toLowerCase();
  return { secure: overTls || !LOCAL_HOSTS.has(hostname) };
}
