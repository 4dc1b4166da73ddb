import type { SessionRecord, UserRecord } from './types.js';
import { unpackUserAgent } from './userAgentCodec.js';

/** Decoding of what the Redis store keeps. */

export type RedisReply = string | number | Buffer | null | RedisReply[];

/**
 * A session is one Redis string, packed (big-endian) as the scripts' `pack_session` writes it:
 *   version (1 byte, 1) | created, last refresh, idle expiry, absolute end (6-byte signed ms each)
 *   | generation (4 bytes) | h: hash of the live secret | p: hash of the predecessor's secret
 *   | e: the live secret sealed under the predecessor's | User-Agent | IP address,
 * h, p, e and the IP address behind a 1-byte length, the User-Agent (see userAgentCodec) behind
 * a 2-byte length. p and e are empty until the first refresh; the predecessor was rotated at
 * the last refresh, so that time is also the start of the reuse grace window.
 */
export const SESSION_RECORD_VERSION = 1;

export interface StoredSession {
  session: SessionRecord;
  /** `e`, as the store was given it (null before the first refresh). */
  sealedSuccessor: string | null;
}

/** Decodes a stored session record. */
export function decodeSession(userId: string, id: string, record: Buffer): StoredSession {
  if (record[0] !== SESSION_RECORD_VERSION) throw new Error(`unknown session record version ${record[0]}`);
  let at = 1;
  const time = () => {
    const value = record.readIntBE(at, 6);
    at += 6;
    return value;
  };
  const bytes = (lengthBytes: 1 | 2) => {
    const length = lengthBytes === 1 ? record.readUInt8(at) : record.readUInt16BE(at);
    at += lengthBytes;
    const value = record.subarray(at, at + length);
    at += length;
    return value;
  };
  const createdAt = time();
  const lastRefreshedAt = time();
  const expiresAt = time();
  const absoluteExpiresAt = time();
  const generation = record.readUInt32BE(at);
  at += 4;
  bytes(1); // h
  bytes(1); // p
  const sealed = bytes(1);
  const packedUserAgent = bytes(2);
  const ip = bytes(1);
  if (at !== record.length) throw new Error('a session record of the wrong length');
  const session = {
    id,
    userId,
    createdAt,
    lastRefreshedAt,
    expiresAt,
    absoluteExpiresAt,
    ipAddress: ip.length > 0 ? ip.toString('utf8') : null,
    generation,
  } as SessionRecord;
  // Inflated when first read: a refresh or a session check rarely shows the User-Agent. Copied
  // (a few bytes): the reply may be a slice of the Redis parser's buffer pool, reused later.
  const packed = Buffer.from(packedUserAgent);
  let userAgent: string | null | undefined;
  Object.defineProperty(session, 'userAgent', {
    enumerable: true,
    get: () => (userAgent === undefined ? (userAgent = unpackUserAgent(packed)) : userAgent),
  });
  return { session, sealedSuccessor: sealed.length > 0 ? unpackOpaque(sealed) : null };
}

const OPAQUE_TEXT = 0;
const OPAQUE_BASE64URL = 1;

/**
 * A hash or sealed value as the store keeps it: the bytes a canonical base64url string stands
 * for (a quarter shorter), anything else as its UTF-8 text, behind a byte saying which. One
 * string, one encoding, so equal encodings mean equal strings (the scripts compare them).
 * Limited to 255 bytes (the record gives it a 1-byte length).
 */
export function packOpaque(value: string): Buffer {
  const decoded = Buffer.from(value, 'base64url');
  const packed =
    value.length > 0 && decoded.toString('base64url') === value
      ? Buffer.concat([Buffer.of(OPAQUE_BASE64URL), decoded])
      : Buffer.concat([Buffer.of(OPAQUE_TEXT), Buffer.from(value, 'utf8')]);
  if (packed.length > 255) throw new RangeError('a stored hash or sealed value is over 255 bytes');
  return packed;
}

export function unpackOpaque(packed: Buffer): string {
  const body = packed.subarray(1);
  return packed[0] === OPAQUE_BASE64URL ? body.toString('base64url') : body.toString('utf8');
}

/** An IP address as the record keeps it (1-byte length: an address is at most 45 characters). */
export function packIp(ip: string | null): Buffer {
  const packed = Buffer.from(ip ?? '', 'utf8');
  if (packed.length > 255) throw new RangeError('an IP address is over 255 bytes');
  return packed;
}

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
export function userFromFields(id: string, f: readonly (string | Buffer | null)[]): UserRecord | null {
  const [email, passwordHash, roles, createdAt] = f.map((v) => (v == null ? null : v.toString()));
  if (email == null || passwordHash == null || roles == null || createdAt == null) return null;
  return { id, email, passwordHash, roles: JSON.parse(roles) as string[], createdAt: Number(createdAt) };
}
