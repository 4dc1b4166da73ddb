import type { SessionRecord, UserRecord } from './types.js';
import { unpackUserAgent } from './userAgentCodec.js';

/** Decoding of what the Redis store keeps. */

export type RedisReply = string | number | Buffer | null | RedisReply[];

/** How a field of a packed record is laid out (big-endian). */
export type FieldLayout =
  /** A signed 6-byte integer: a time in epoch ms. */
  | 'int48'
  | 'uint32'
  /** Bytes behind a 1-byte length (at most 255). */
  | 'bytes8'
  /** Bytes behind a 2-byte length. */
  | 'bytes16';

/** Redis's `struct` format of each layout (a length-prefixed `c0` takes its length from the byte before). */
const STRUCT_FORMAT: Record<FieldLayout, string> = { int48: 'i6', uint32: 'I4', bytes8: 'Bc0', bytes16: 'Hc0' };

/** A record's fields, in their order: the one definition both the Lua scripts and the decoder below derive from. */
export interface RecordLayout<F extends string> {
  /** The record's first byte; a record of another version is refused, never misread. */
  version: number;
  fields: readonly (readonly [name: F, layout: FieldLayout])[];
}

export type DecodedRecord<F extends string> = Record<F, number | Buffer>;

/**
 * A session is one Redis string, packed (big-endian) as below: the version byte, then
 *   created, last refresh, idle expiry, absolute end (ms) | generation | secretHash: hash of the
 *   live secret | previousSecretHash: of the predecessor's | sealedSuccessor: the live secret
 *   sealed under the predecessor's | userAgent (see userAgentCodec) | ipAddress.
 * previousSecretHash and sealedSuccessor are empty until the first refresh; the predecessor was
 * rotated at the last refresh, so that time is also the start of the reuse grace window.
 * Changing the layout means a new version (stored records stay readable or are refused).
 */
export const SESSION_RECORD = {
  version: 1,
  fields: [
    ['createdAt', 'int48'],
    ['lastRefreshedAt', 'int48'],
    ['expiresAt', 'int48'],
    ['absoluteExpiresAt', 'int48'],
    ['generation', 'uint32'],
    ['secretHash', 'bytes8'],
    ['previousSecretHash', 'bytes8'],
    ['sealedSuccessor', 'bytes8'],
    ['userAgent', 'bytes16'],
    ['ipAddress', 'bytes8'],
  ],
} as const satisfies RecordLayout<string>;

type SessionField = (typeof SESSION_RECORD.fields)[number][0];

/** The `struct` format string of a record: `>` (big-endian), the version byte, then each field. */
export function structFormat(layout: RecordLayout<string>): string {
  return `>B${layout.fields.map(([, field]) => STRUCT_FORMAT[field]).join('')}`;
}

/**
 * The Lua functions that unpack and pack a record, named `unpack_<name>` and `pack_<name>`: a
 * table with one entry per field, under the field's name. Unpacking fails with TESSERA_RECORD on
 * a record of another version or length.
 */
export function luaRecordCodec(name: string, layout: RecordLayout<string>): string {
  const fields = layout.fields.map(([field]) => field);
  const packed = layout.fields.map(([field, kind]) => (kind.startsWith('bytes') ? `#s.${field}, s.${field}` : `s.${field}`));
  return `local ${name.toUpperCase()}_FORMAT = '${structFormat(layout)}'
local function unpack_${name}(raw)
  local ok, version, ${fields.join(', ')}, after = pcall(struct.unpack, ${name.toUpperCase()}_FORMAT, raw)
  if not ok or version ~= ${layout.version} or after ~= #raw + 1 then
    error({err = 'TESSERA_RECORD a ${name} record this version cannot read'})
  end
  return {${fields.map((field) => `${field} = ${field}`).join(', ')}}
end
local function pack_${name}(s)
  return struct.pack(${name.toUpperCase()}_FORMAT, ${layout.version}, ${packed.join(', ')})
end`;
}

/** Reads a packed record field by field, as its layout says; throws on another version or length. */
export function decodeRecord<F extends string>(layout: RecordLayout<F>, record: Buffer): DecodedRecord<F> {
  if (record[0] !== layout.version) throw new Error(`unknown record version ${record[0]}`);
  let at = 1;
  const out = {} as DecodedRecord<F>;
  for (const [name, kind] of layout.fields) {
    switch (kind) {
      case 'int48':
        out[name] = record.readIntBE(at, 6);
        at += 6;
        break;
      case 'uint32':
        out[name] = record.readUInt32BE(at);
        at += 4;
        break;
      case 'bytes8':
      case 'bytes16': {
        const length = kind === 'bytes8' ? record.readUInt8(at) : record.readUInt16BE(at);
        at += kind === 'bytes8' ? 1 : 2;
        out[name] = record.subarray(at, at + length);
        at += length;
        break;
      }
    }
  }
  if (at !== record.length) throw new Error('a record of the wrong length');
  return out;
}

export interface StoredSession {
  session: SessionRecord;
  /** `sealedSuccessor`, as the store was given it (null before the first refresh). */
  sealedSuccessor: string | null;
}

/** Decodes a stored session record. */
export function decodeSession(userId: string, id: string, record: Buffer): StoredSession {
  const fields = decodeRecord<SessionField>(SESSION_RECORD, record);
  const ip = fields.ipAddress as Buffer;
  const sealed = fields.sealedSuccessor as Buffer;
  const session = {
    id,
    userId,
    createdAt: fields.createdAt as number,
    lastRefreshedAt: fields.lastRefreshedAt as number,
    expiresAt: fields.expiresAt as number,
    absoluteExpiresAt: fields.absoluteExpiresAt as number,
    ipAddress: ip.length > 0 ? ip.toString('utf8') : null,
    generation: fields.generation as number,
  } as SessionRecord;
  // Inflated when first read: a refresh or a session check rarely shows the User-Agent. Copied
  // (a few bytes): the reply may be a slice of the Redis parser's buffer pool, reused later.
  const packed = Buffer.from(fields.userAgent as Buffer);
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
