import type { SessionRecord, UserRecord } from './types.js';

/** Decoding of what the Redis store keeps, field by field. */

export type RedisReply = string | number | null | RedisReply[];

function int(value: RedisReply | undefined): number {
  return Number(value);
}

function orNull(value: RedisReply | undefined): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

/** Fields in the order [created, last, expires, absoluteEnd, ua, ip, generation]. */
export function sessionFromFields(userId: string, id: string, f: readonly RedisReply[]): SessionRecord {
  return {
    id,
    userId,
    createdAt: int(f[0]),
    lastRefreshedAt: int(f[1]),
    expiresAt: int(f[2]),
    absoluteExpiresAt: int(f[3]),
    userAgent: orNull(f[4]),
    ipAddress: orNull(f[5]),
    generation: int(f[6]),
  };
}

export const SESSION_FIELDS = ['c', 'l', 'x', 'a', 'ua', 'ip', 'g'] as const;

export const USER_FIELDS = ['e', 'h', 'r', 'c'] as const;

export function userToFields(user: UserRecord): Record<(typeof USER_FIELDS)[number], string> {
  return {
    e: user.email,
    h: user.passwordHash,
    r: JSON.stringify(user.roles),
    c: String(user.createdAt),
  };
}

/** Fields in the order of USER_FIELDS; null when the user does not exist. */
export function userFromFields(id: string, f: readonly (string | null)[]): UserRecord | null {
  const [email, passwordHash, roles, createdAt] = f;
  if (email == null || passwordHash == null || roles == null || createdAt == null) return null;
  return { id, email, passwordHash, roles: JSON.parse(roles) as string[], createdAt: Number(createdAt) };
}
