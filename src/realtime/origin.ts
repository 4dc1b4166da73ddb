/**
 * Cross-site WebSocket hijacking: a browser sends cookies with a WebSocket handshake to any site,
 * and no CORS preflight guards it, so the server must check `Origin` itself. Allowed: no Origin
 * header (not a browser), the gateway's own origin (AUTH_ISSUER's), or one listed in
 * CORS_ORIGINS. Anything else, `null` included (sandboxed frames, file: pages), is refused.
 */
export function isAllowedOrigin(origin: string | undefined, own: string, allowed: readonly string[]): boolean {
  if (origin === undefined) return true;
  return origin === own || allowed.includes(origin);
}
