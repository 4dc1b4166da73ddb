/**
 * What the client reads from an access token: its payload, decoded but NOT verified (the gateway
 * verifies; the client only needs `exp` to know when to refresh, and the ids to show). Anything
 * malformed is `null`, which the client treats as signed out: never a throw.
 */
export interface AccessTokenClaims {
  /** The user's id. */
  sub: string;
  /** The session's id. */
  sid: string;
  /** Seconds since the epoch (the gateway's clock). */
  iat: number;
  exp: number;
  roles: string[];
  scope: string;
}

function base64UrlDecode(part: string): string | null {
  if (!/^[A-Za-z0-9_-]+$/.test(part)) return null;
  const base64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
  try {
    const binary = atob(base64);
    const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

const isInteger = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value);

/** The claims of a JWT access token, or null when it is not one (wrong shape, bad JSON, a claim missing or of the wrong type). */
export function decodeAccessToken(token: unknown): AccessTokenClaims | null {
  if (typeof token !== 'string') return null;
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return null;
  const json = base64UrlDecode(parts[1]);
  if (json === null) return null;
  let payload: unknown;
  try {
    payload = JSON.parse(json);
  } catch {
    return null;
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return null;
  const { sub, sid, iat, exp, roles, scope } = payload as Record<string, unknown>;
  if (typeof sub !== 'string' || typeof sid !== 'string' || !isInteger(iat) || !isInteger(exp) || exp <= iat) return null;
  const roleList = Array.isArray(roles) && roles.every((role) => typeof role === 'string') ? (roles as string[]) : [];
  return { sub, sid, iat, exp, roles: roleList, scope: typeof scope === 'string' ? scope : roleList.join(' ') };
}
