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
  /**
   * The version before this one, still read (and rewritten as this one by the next write): its
   * layout, and the value of each field it lacks, as a Lua expression over the unpacked record
   * `s` and as a function of the decoded fields.
   */
  upgradesFrom?: {
    layout: RecordLayout<string>;
    defaults: Readonly<Record<string, { lua: string; value: (fields: DecodedRecord<string>) => number | Buffer }>>;
  };
}

export type DecodedRecord<F extends string> = Record<F, number | Buffer>;

/** The first session layout (version 1): no authentication fields. Read as version 2 with auth_time = created, amr pwd, acr aal1. */
export const SESSION_RECORD_V1 = {
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

/**
 * A session is one Redis string, packed (big-endian) as below: the version byte, then
 *   created, last refresh, idle expiry, absolute end (ms) | generation | secretHash: hash of the
 *   live secret | previousSecretHash: of the predecessor's | sealedSuccessor: the live secret
 *   sealed under the predecessor's | userAgent (see userAgentCodec) | ipAddress | authTime (ms:
 *   the last time the user proved a credential in the session) | amr (RFC 8176 values,
 *   comma-separated) | acr (`aal1`, `aal2`).
 * previousSecretHash and sealedSuccessor are empty until the first refresh; the predecessor was
 * rotated at the last refresh, so that time is also the start of the reuse grace window.
 * Changing the layout means a new version (stored records stay readable or are refused): version
 * 1 records (before authTime, amr, acr) are read as signed in with a password at their creation.
 */
export const SESSION_RECORD = {
  version: 2,
  fields: [...SESSION_RECORD_V1.fields, ['authTime', 'int48'], ['amr', 'bytes8'], ['acr', 'bytes8']],
  upgradesFrom: {
    layout: SESSION_RECORD_V1,
    defaults: {
      authTime: { lua: 's.createdAt', value: (f) => f.createdAt as number },
      amr: { lua: "'pwd'", value: () => Buffer.from('pwd') },
      acr: { lua: "'aal1'", value: () => Buffer.from('aal1') },
    },
  },
} as const satisfies RecordLayout<string>;

type SessionField = (typeof SESSION_RECORD.fields)[number][0];

/** The `struct` format string of a record: `>` (big-endian), the version byte, then each field. */
export function structFormat(layout: RecordLayout<string>): string {
  return `>B${layout.fields.map(([, field]) => STRUCT_FORMAT[field]).join('')}`;
}

/**
 * The Lua functions that unpack and pack a record, named `unpack_<name>` and `pack_<name>`: a
 * table with one entry per field, under the field's name. Unpacking reads the layout's previous
 * version too (filling in the fields it lacks); it fails with TESSERA_RECORD on a record of any
 * other version or length. Packing always writes the current version.
 */
export function luaRecordCodec(name: string, layout: RecordLayout<string>): string {
  const upper = name.toUpperCase();
  const unpackAs = (format: string, version: number, fields: readonly string[], fill: string) => `
  if version == ${version} then
    local ok, _, ${fields.join(', ')}, after = pcall(struct.unpack, ${format}, raw)
    if ok and after == #raw + 1 then
      local s = {${fields.map((field) => `${field} = ${field}`).join(', ')}}${fill}
      return s
    end
  end`;
  const fields = layout.fields.map(([field]) => field);
  const packed = layout.fields.map(([field, kind]) => (kind.startsWith('bytes') ? `#s.${field}, s.${field}` : `s.${field}`));
  const older = layout.upgradesFrom;
  const olderCase = older
    ? unpackAs(
        `${upper}_FORMAT_${older.layout.version}`,
        older.layout.version,
        older.layout.fields.map(([field]) => field),
        Object.entries(older.defaults)
          .map(([field, d]) => `\n      s.${field} = ${d.lua}`)
          .join(''),
      )
    : '';
  return `local ${upper}_FORMAT = '${structFormat(layout)}'
${older ? `local ${upper}_FORMAT_${older.layout.version} = '${structFormat(older.layout)}'\n` : ''}local function unpack_${name}(raw)
  local version = string.byte(raw, 1)${unpackAs(`${upper}_FORMAT`, layout.version, fields, '')}${olderCase}
  error({err = 'TESSERA_RECORD a ${name} record this version cannot read'})
end
local function pack_${name}(s)
  return struct.pack(${upper}_FORMAT, ${layout.version}, ${packed.join(', ')})
end`;
}

/** Reads a packed record field by field, as its layout says; throws on another version or length. */
export function decodeRecord<F extends string>(layout: RecordLayout<F>, record: Buffer): DecodedRecord<F> {
  const older = layout.upgradesFrom;
  if (older && record[0] === older.layout.version) {
    const fields = decodeRecord(older.layout, record) as DecodedRecord<string>;
    for (const [name, d] of Object.entries(older.defaults)) fields[name] = d.value(fields);
    return fields as DecodedRecord<F>;
  }
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
    authTime: fields.authTime as number,
    amr: (fields.amr as Buffer).toString('utf8').split(',').filter(Boolean),
    acr: (fields.acr as Buffer).toString('utf8') === 'aal2' ? 'aal2' : 'aal1',
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

/**
 * A user is a hash of these fields: `e` email, `h` password hash ('' for none), `r` roles (JSON),
 * `c` created (ms), `v` email verified ('1'), `d` disabled ('1'), and `s`, the session index
 * (redisScripts.ts). The second layout added `v` and `d`: a hash without them (a user stored
 * before) reads as not verified and not disabled, so no version field is needed for it.
 */
export const USER_FIELDS = ['e', 'h', 'r', 'c', 'v', 'd'] as const;

export function userToFields(user: UserRecord): Record<(typeof USER_FIELDS)[number], string> {
  return {
    e: user.email,
    h: user.passwordHash ?? '',
    r: JSON.stringify(user.roles),
    c: String(user.createdAt),
    v: user.emailVerified ? '1' : '0',
    d: user.disabled ? '1' : '0',
  };
}

/** Fields in the order of USER_FIELDS; null when the user does not exist. */
export function userFromFields(id: string, f: readonly (string | Buffer | null)[]): UserRecord | null {
  const [email, passwordHash, roles, createdAt, verified, disabled] = f.map((v) => (v == null ? null : v.toString()));
  if (email == null || passwordHash == null || roles == null || createdAt == null) return null;
  return {
    id,
    email,
    passwordHash: passwordHash === '' ? null : passwordHash,
    roles: JSON.parse(roles) as string[],
    createdAt: Number(createdAt),
    emailVerified: verified === '1',
    disabled: disabled === '1',
  };
}

/** An amr list as the session record keeps it (comma-separated; values are RFC 8176 words). */
export function packAmr(amr: readonly string[]): Buffer {
  if (amr.some((value) => !/^[a-z0-9_]{1,16}$/.test(value))) throw new RangeError('an amr value must be a short lower-case word');
  const packed = Buffer.from(amr.join(','), 'utf8');
  if (packed.length > 255) throw new RangeError('amr is over 255 bytes');
  return packed;
}
