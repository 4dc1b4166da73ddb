import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createSecretKey,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { ID_PATTERN } from '../ids.js';
import { pooledRandomBytes, type RandomBytes } from '../random.js';

/** What an opaque refresh token carries (docs/contract.md section 3.2). */
export interface RefreshTokenParts {
  userId: string;
  sessionId: string;
  /** How many times the session has been refreshed; 0 at login. */
  generation: number;
  /** 32 random bytes; the store keeps only its hash. */
  secret: Buffer;
}

const SECRET_BYTES = 32;
const TAG_BYTES = 16;
const MAX_TOKEN_LENGTH = 200;
const MAX_GENERATION = 2 ** 31 - 1;
const GENERATION_PATTERN = /^(0|[1-9][0-9]{0,9})$/;
const BASE64URL_PATTERN = /^[A-Za-z0-9_-]+$/;
const SUCCESSOR_SALT = 'tessera/successor/v2';
const IV_BYTES = 12;
const GCM_TAG_BYTES = 16;

/**
 * The tag that proves the gateway issued an opaque token (refresh tokens here, mail tokens in
 * mailTokens.ts): a truncated HMAC-SHA256 of the token's body under a key derived from the
 * signing keys. The first key tags; every key is accepted (so a rotation keeps tokens working).
 * Defined once: a token whose tag does not match never reaches the store.
 */
export class OpaqueTokenTagger {
  private readonly keys: KeyObject[];

  constructor(tagKeys: Buffer[]) {
    if (tagKeys.length === 0) throw new RangeError('an opaque token tagger needs at least one tag key');
    this.keys = tagKeys.map((key) => createSecretKey(key));
  }

  /** The base64url tag of `body`. */
  tag(body: string): string {
    return tag(this.keys[0] as KeyObject, body).toString('base64url');
  }

  /** Whether `tagText` is the canonical base64url tag of `body` under one of the keys (constant time per key). */
  matches(body: string, tagText: string): boolean {
    const given = canonicalBase64url(tagText, TAG_BYTES);
    if (!given) return false;
    let matched = false;
    for (const key of this.keys) matched = timingSafeEqual(tag(key, body), given) || matched;
    return matched;
  }
}

/** The bytes of `text` if it is exactly the canonical base64url of `length` bytes. */
export function canonicalBase64url(text: string, length: number): Buffer | null {
  if (!BASE64URL_PATTERN.test(text)) return null;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.length === length && bytes.toString('base64url') === text ? bytes : null;
}

/**
 * `userId.sessionId.generation.secret.tag`, where the tag (OpaqueTokenTagger) proves the gateway
 * issued the token: a guessed token never reaches the store.
 */
export class RefreshTokenCodec {
  private readonly tagger: OpaqueTokenTagger;

  /** @param tagKeys the first tags new tokens; every one is accepted when decoding. */
  constructor(
    tagKeys: Buffer[],
    private readonly random: RandomBytes = pooledRandomBytes,
  ) {
    if (tagKeys.length === 0) throw new RangeError('RefreshTokenCodec needs at least one tag key');
    this.tagger = new OpaqueTokenTagger(tagKeys);
  }

  /** 256 random bits. */
  newSecret(): Buffer {
    return this.random(SECRET_BYTES);
  }

  encode(parts: RefreshTokenParts): string {
    assertEncodable(parts);
    const body = `${parts.userId}.${parts.sessionId}.${parts.generation}.${parts.secret.toString('base64url')}`;
    return `${body}.${this.tagger.tag(body)}`;
  }

  /** The parts of a token this gateway issued, or null for anything else. */
  decode(token: unknown): RefreshTokenParts | null {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return null;
    const fields = token.split('.');
    if (fields.length !== 5) return null;
    const [userId = '', sessionId = '', generationText = '', secretText = '', tagText = ''] = fields;
    if (!ID_PATTERN.test(userId) || !ID_PATTERN.test(sessionId)) return null;
    const generation = parseGeneration(generationText);
    const secret = canonicalBase64url(secretText, SECRET_BYTES);
    if (generation === null || !secret) return null;
    const body = token.slice(0, token.length - tagText.length - 1);
    return this.tagger.matches(body, tagText) ? { userId, sessionId, generation, secret } : null;
  }
}

/**
 * What the store keeps instead of the secret: SHA-256 truncated to 128 bits, base64url. The
 * secret is 256 random bits, so finding a secret that matches a stored hash (a read of Redis
 * turned into a usable token) takes 2^128 work; collisions do not matter here, and the shorter
 * hash keeps each session's record smaller (16 bytes once for the live secret, once for its
 * predecessor).
 */
export function hashSecret(secret: Buffer): string {
  return createHash('sha256').update(secret).digest().subarray(0, 16).toString('base64url');
}

/**
 * Encrypts the successor secret under a key only the holder of the predecessor can derive
 * (for the reuse grace of docs/contract.md section 3.3): base64url(iv | ciphertext | auth tag), AES-256-GCM.
 */
export function sealSuccessor(
  predecessorSecret: Buffer,
  successorSecret: Buffer,
  random: RandomBytes = pooledRandomBytes,
): string {
  const iv = random(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', successorKey(predecessorSecret), iv);
  const ciphertext = Buffer.concat([cipher.update(successorSecret), cipher.final()]);
  return Buffer.concat([iv, ciphertext, cipher.getAuthTag()]).toString('base64url');
}

/** The successor secret, or null if `sealed` is damaged or was sealed under another predecessor. */
export function openSuccessor(predecessorSecret: Buffer, sealed: string): Buffer | null {
  if (typeof sealed !== 'string' || !BASE64URL_PATTERN.test(sealed)) return null;
  const bytes = Buffer.from(sealed, 'base64url');
  if (bytes.length < IV_BYTES + GCM_TAG_BYTES) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', successorKey(predecessorSecret), bytes.subarray(0, IV_BYTES));
    decipher.setAuthTag(bytes.subarray(bytes.length - GCM_TAG_BYTES));
    return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - GCM_TAG_BYTES)), decipher.final()]);
  } catch {
    return null;
  }
}

/**
 * HKDF-Extract (HMAC-SHA256 keyed by the salt) of the predecessor secret: 256 uniformly random
 * bits need no expand step, and one HMAC is much cheaper than hkdfSync on the refresh path.
 */
function successorKey(predecessorSecret: Buffer): Buffer {
  return createHmac('sha256', SUCCESSOR_SALT).update(predecessorSecret).digest();
}

function tag(key: KeyObject, body: string): Buffer {
  return createHmac('sha256', key).update(body).digest().subarray(0, TAG_BYTES);
}

function parseGeneration(text: string): number | null {
  if (!GENERATION_PATTERN.test(text)) return null;
  const value = Number(text);
  return value <= MAX_GENERATION ? value : null;
}

function assertEncodable(parts: RefreshTokenParts): void {
  const ok =
    ID_PATTERN.test(parts.userId) &&
    ID_PATTERN.test(parts.sessionId) &&
    Number.isInteger(parts.generation) &&
    parts.generation >= 0 &&
    parts.generation <= MAX_GENERATION &&
    parts.secret.length === SECRET_BYTES;
  if (!ok) throw new RangeError('refresh token parts out of range');
}
