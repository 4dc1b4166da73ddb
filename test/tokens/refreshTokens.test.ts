import { createHash, createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.js';
import {
  RefreshTokenCodec,
  hashSecret,
  openSuccessor,
  sealSuccessor,
  type RefreshTokenParts,
} from '../../src/tokens/refreshTokens.js';

const KEY_A = randomBytes(32);
const KEY_B = randomBytes(32);

function parts(codec: RefreshTokenCodec, generation = 3): RefreshTokenParts {
  return { userId: newId(), sessionId: newId(), generation, secret: codec.newSecret() };
}

/** `body.tag` with the tag computed as documented: HMAC-SHA256 truncated to 16 bytes. */
function handTagged(key: Buffer, body: string): string {
  return `${body}.${createHmac('sha256', key).update(body).digest().subarray(0, 16).toString('base64url')}`;
}

/** Replaces the field at `index` of a dotted token. */
function withField(token: string, index: number, value: string): string {
  const fields = token.split('.');
  fields[index] = value;
  return fields.join('.');
}

describe('RefreshTokenCodec', () => {
  it('round-trips a token, which is opaque and not a JWT', () => {
    const codec = new RefreshTokenCodec([KEY_A]);
    const original = parts(codec);
    const token = codec.encode(original);
    expect(token.split('.')).toHaveLength(5);
    expect(token).toContain(`${original.userId}.${original.sessionId}.3.`);
    expect(codec.decode(token)).toEqual(original);
  });

  it('round-trips generation 0 and the largest generation', () => {
    const codec = new RefreshTokenCodec([KEY_A]);
    for (const generation of [0, 2 ** 31 - 1]) {
      const original = parts(codec, generation);
      expect(codec.decode(codec.encode(original))).toEqual(original);
    }
  });

  it('makes 32-byte secrets that differ every time', () => {
    const codec = new RefreshTokenCodec([KEY_A]);
    const secrets = Array.from({ length: 50 }, () => codec.newSecret().toString('hex'));
    expect(secrets.every((hex) => hex.length === 64)).toBe(true);
    expect(new Set(secrets).size).toBe(50);
  });

  it('uses the injected random source', () => {
    const codec = new RefreshTokenCodec([KEY_A], (size) => Buffer.alloc(size, 7));
    expect(codec.newSecret()).toEqual(Buffer.alloc(32, 7));
  });

  it('refuses a token whose tag has one character changed', () => {
    const codec = new RefreshTokenCodec([KEY_A]);
    const token = codec.encode(parts(codec));
    const tag = token.split('.')[4] ?? '';
    const flipped = (tag[0] === 'A' ? 'B' : 'A') + tag.slice(1);
    expect(codec.decode(withField(token, 4, flipped))).toBeNull();
  });

  it('refuses a token whose secret, generation or session was changed (the tag no longer matches)', () => {
    const codec = new RefreshTokenCodec([KEY_A]);
    const token = codec.encode(parts(codec));
    expect(codec.decode(withField(token, 3, codec.newSecret().toString('base64url')))).toBeNull();
    expect(codec.decode(withField(token, 2, '4'))).toBeNull();
    expect(codec.decode(withField(token, 1, newId()))).toBeNull();
  });

  it('refuses a token tagged with a key it does not hold', () => {
    const theirs = new RefreshTokenCodec([KEY_B]);
    expect(new RefreshTokenCodec([KEY_A]).decode(theirs.encode(parts(theirs)))).toBeNull();
  });

  it('still accepts a token tagged with an old key after rotation, and tags new ones with the new key', () => {
    const before = new RefreshTokenCodec([KEY_A]);
    const original = parts(before);
    const oldToken = before.encode(original);
    const after = new RefreshTokenCodec([KEY_B, KEY_A]);
    expect(after.decode(oldToken)).toEqual(original);
    const newToken = after.encode(original);
    expect(newToken).not.toBe(oldToken);
    expect(new RefreshTokenCodec([KEY_B]).decode(newToken)).toEqual(original);
  });

  it('decodes a token built by hand to the documented format', () => {
    const codec = new RefreshTokenCodec([KEY_A]);
    const original = parts(codec, 12);
    const body = `${original.userId}.${original.sessionId}.12.${original.secret.toString('base64url')}`;
    expect(codec.decode(handTagged(KEY_A, body))).toEqual(original);
    expect(codec.encode(original)).toBe(handTagged(KEY_A, body));
  });

  it.each(['01', '-1', '1.5', '+1', '1e3', '', ' 1', '0x1', '2147483648', '99999999999'])(
    'refuses generation text %j even when correctly tagged',
    (text) => {
      const codec = new RefreshTokenCodec([KEY_A]);
      const body = `${newId()}.${newId()}.${text}.${codec.newSecret().toString('base64url')}`;
      expect(codec.decode(handTagged(KEY_A, body))).toBeNull();
    },
  );

  it('refuses a secret of 31 or 33 bytes', () => {
    const codec = new RefreshTokenCodec([KEY_A]);
    const token = codec.encode(parts(codec));
    for (const size of [31, 33]) {
      expect(codec.decode(withField(token, 3, randomBytes(size).toString('base64url')))).toBeNull();
    }
  });

  it('refuses a secret or tag in non-canonical base64url, even when correctly tagged', () => {
    const codec = new RefreshTokenCodec([KEY_A]);
    // 43 characters carry 258 bits: a final 'B' decodes to the same 32 zero bytes as 'A'.
    const body = `${newId()}.${newId()}.0.${Buffer.alloc(32).toString('base64url').slice(0, -1)}B`;
    expect(codec.decode(handTagged(KEY_A, body))).toBeNull();
    // 22 characters carry 132 bits: the next character up decodes to the same 16 tag bytes.
    const token = codec.encode(parts(codec));
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(token.slice(-1));
    const variant = token.slice(0, -1) + alphabet[last + 1];
    expect(Buffer.from(variant.split('.')[4] ?? '', 'base64url')).toEqual(Buffer.from(token.split('.')[4] ?? '', 'base64url'));
    expect(codec.decode(variant)).toBeNull();
    expect(codec.decode(`${token}=`)).toBeNull();
  });

  it('refuses ids that are not gateway ids, and the wrong number of fields', () => {
    const codec = new RefreshTokenCodec([KEY_A]);
    const token = codec.encode(parts(codec));
    const secret = codec.newSecret().toString('base64url');
    for (const [userId, sessionId] of [['short', newId()], [newId(), `${newId()}x`], [newId(), `${newId().slice(1)}+`]]) {
      expect(codec.decode(handTagged(KEY_A, `${userId}.${sessionId}.0.${secret}`))).toBeNull();
    }
    expect(codec.decode(`${token}.x`)).toBeNull();
    expect(codec.decode(token.split('.').slice(0, 4).join('.'))).toBeNull();
  });

  it('refuses non-strings, the empty string and overlong input without throwing', () => {
    const codec = new RefreshTokenCodec([KEY_A]);
    for (const input of [undefined, null, 42, {}, [], Buffer.from('x'), '', 'x'.repeat(201)]) {
      expect(codec.decode(input)).toBeNull();
    }
  });

  it('refuses to encode parts it could never decode', () => {
    const codec = new RefreshTokenCodec([KEY_A]);
    expect(() => codec.encode({ ...parts(codec), generation: -1 })).toThrow(RangeError);
    expect(() => codec.encode({ ...parts(codec), secret: randomBytes(16) })).toThrow(RangeError);
    expect(() => codec.encode({ ...parts(codec), userId: 'a.b' })).toThrow(RangeError);
  });
});

describe('hashSecret', () => {
  it('is the first 128 bits of SHA-256 of the secret: deterministic, differs per secret, not the secret', () => {
    const secret = randomBytes(32);
    expect(hashSecret(secret)).toBe(hashSecret(Buffer.from(secret)));
    expect(hashSecret(secret)).not.toBe(hashSecret(randomBytes(32)));
    expect(hashSecret(secret)).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(Buffer.from(hashSecret(secret), 'base64url')).toEqual(createHash('sha256').update(secret).digest().subarray(0, 16));
    expect(hashSecret(secret)).not.toBe(secret.toString('base64url'));
  });
});

describe('sealSuccessor / openSuccessor', () => {
  it('opens with the predecessor secret', () => {
    const predecessor = randomBytes(32);
    const successor = randomBytes(32);
    const sealed = sealSuccessor(predecessor, successor);
    expect(openSuccessor(predecessor, sealed)).toEqual(successor);
    expect(sealed).not.toContain(successor.toString('base64url'));
  });

  it('uses a fresh IV each time', () => {
    const predecessor = randomBytes(32);
    const successor = randomBytes(32);
    expect(sealSuccessor(predecessor, successor)).not.toBe(sealSuccessor(predecessor, successor));
  });

  it('gives null for another predecessor secret', () => {
    const sealed = sealSuccessor(randomBytes(32), randomBytes(32));
    expect(openSuccessor(randomBytes(32), sealed)).toBeNull();
  });

  it('gives null for a tampered, truncated or garbage sealed value', () => {
    const predecessor = randomBytes(32);
    const sealed = sealSuccessor(predecessor, randomBytes(32));
    const bytes = Buffer.from(sealed, 'base64url');
    for (const index of [0, 20, bytes.length - 1]) {
      const copy = Buffer.from(bytes);
      copy[index] = (copy[index] ?? 0) ^ 1;
      expect(openSuccessor(predecessor, copy.toString('base64url'))).toBeNull();
    }
    expect(openSuccessor(predecessor, sealed.slice(0, 30))).toBeNull();
    expect(openSuccessor(predecessor, '')).toBeNull();
    expect(openSuccessor(predecessor, 'not base64url!')).toBeNull();
  });
});
