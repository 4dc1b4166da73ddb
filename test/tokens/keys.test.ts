import { hkdfSync } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, decodeJwt, importJWK, jwtVerify } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { ConfigError } from '../../src/errors.js';
import { newId } from '../../src/ids.js';
import {
  generateSigningJwk,
  keySetJson,
  loadKeySetFile,
  loadOrCreateDevKeySet,
  parseKeySet,
  rotateKeySetJson,
  SIGNING_ALGORITHMS,
  signJws,
  verifyJwsSignature,
  type PrivateSigningJwk,
} from '../../src/tokens/keys.js';
import type { SigningAlgorithm } from '../../src/tokens/types.js';
import { makeService } from './helpers.js';

const tempDirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-keys-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function configErrorOf(promise: Promise<unknown>): Promise<ConfigError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

function withoutD(jwk: PrivateSigningJwk): Record<string, unknown> {
  const { d: _d, ...rest } = jwk;
  return rest;
}

describe('generateSigningJwk', () => {
  it('makes an Ed25519 key named EdDSA by default, its kid the RFC 7638 thumbprint', async () => {
    const jwk = await generateSigningJwk();
    expect(jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
    expect(jwk.d).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(jwk.kid).toBe(await calculateJwkThumbprint(jwk));
  });

  it('makes a P-256 key for ES256', async () => {
    const jwk = await generateSigningJwk('ES256');
    expect(jwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(jwk.y).toEqual(expect.any(String));
    expect(jwk.kid).toBe(await calculateJwkThumbprint(jwk));
  });

  it('makes a different key every time', async () => {
    expect((await generateSigningJwk()).kid).not.toBe((await generateSigningJwk()).kid);
  });
});

describe('parseKeySet', () => {
  it('makes the first key active and keeps the order', async () => {
    const jwks = [await generateSigningJwk(), await generateSigningJwk('ES256')];
    const keySet = await parseKeySet(keySetJson(jwks), 'keys.json');
    expect(keySet.active.kid).toBe(jwks[0]?.kid);
    expect(keySet.keys.map((key) => [key.kid, key.alg])).toEqual(jwks.map((jwk) => [jwk.kid, jwk.alg]));
    expect(keySet.publicJwks().map((jwk) => jwk.kid)).toEqual(jwks.map((jwk) => jwk.kid));
    expect(JSON.stringify(keySet.publicJwks())).not.toMatch(/"d"/);
  });

  it('derives one 32-byte refresh tag key per signing key, the same on every instance', async () => {
    const jwks = [await generateSigningJwk(), await generateSigningJwk('ES256')];
    const a = await parseKeySet(keySetJson(jwks), 'a');
    const b = await parseKeySet(keySetJson(jwks), 'b');
    expect(a.refreshTagKeys).toHaveLength(2);
    expect(a.refreshTagKeys.map((key) => key.length)).toEqual([32, 32]);
    expect(a.refreshTagKeys).toEqual(b.refreshTagKeys);
    expect(a.refreshTagKeys[0]?.equals(a.refreshTagKeys[1] ?? Buffer.alloc(0))).toBe(false);
    const [first] = jwks as [PrivateSigningJwk];
    const expected = hkdfSync('sha256', Buffer.from(first.d, 'base64url'), 'tessera/refresh-token-tag/v1', first.kid, 32);
    expect(a.refreshTagKeys[0]).toEqual(Buffer.from(expected));
  });

  it('accepts keys whose kid is not a thumbprint and that carry extra members', async () => {
    const jwk = { ...(await generateSigningJwk()), kid: 'key-2026-01', key_ops: ['verify'], ext: true };
    const keySet = await parseKeySet(JSON.stringify({ keys: [jwk] }), 'keys.json');
    expect(keySet.active.kid).toBe('key-2026-01');
  });

  const cases: Array<[string, () => Promise<string>, string]> = [
    ['bad JSON', async () => '{"keys": [', 'not valid JSON'],
    ['an array', async () => '[]', 'JWK Set'],
    ['no keys array', async () => '{"kid": "x"}', 'JWK Set'],
    ['an empty set', async () => '{"keys": []}', 'empty'],
    ['a public key', async () => JSON.stringify({ keys: [withoutD(await generateSigningJwk())] }), 'key 1 has no "d"'],
    [
      'a public second key',
      async () => JSON.stringify({ keys: [await generateSigningJwk(), withoutD(await generateSigningJwk())] }),
      'key 2 has no "d" (it must be a private key)',
    ],
    [
      'a duplicate kid',
      async () => {
        const a = await generateSigningJwk();
        return keySetJson([a, { ...(await generateSigningJwk()), kid: a.kid }]);
      },
      'key 2 repeats the kid',
    ],
    ['alg RS256', async () => JSON.stringify({ keys: [{ ...(await generateSigningJwk()), alg: 'RS256' }] }), '"alg"'],
    ['alg Ed25519', async () => JSON.stringify({ keys: [{ ...(await generateSigningJwk()), alg: 'Ed25519' }] }), '"alg"'],
    ['no alg', async () => JSON.stringify({ keys: [{ ...(await generateSigningJwk()), alg: undefined }] }), '"alg"'],
    [
      'an EdDSA alg on a P-256 key',
      async () => JSON.stringify({ keys: [{ ...(await generateSigningJwk('ES256')), alg: 'EdDSA' }] }),
      'kty OKP and crv Ed25519',
    ],
    ['an empty kid', async () => JSON.stringify({ keys: [{ ...(await generateSigningJwk()), kid: '' }] }), '"kid"'],
    ['use enc', async () => JSON.stringify({ keys: [{ ...(await generateSigningJwk()), use: 'enc' }] }), '"use"'],
    ['a key that is not an object', async () => '{"keys": ["abc"]}', 'key 1 is not an object'],
    [
      'a private part of another key',
      async () => keySetJson([{ ...(await generateSigningJwk()), d: (await generateSigningJwk()).d }]),
      'key 1 cannot be used',
    ],
    [
      'a broken private part',
      async () => keySetJson([{ ...(await generateSigningJwk('ES256')), d: 'AAAA' }]),
      'key 1 cannot be used',
    ],
  ];
  it.each(cases)('refuses %s with one ConfigError line naming SIGNING_KEYS and the source', async (_name, make, text) => {
    const err = await configErrorOf(parseKeySet(await make(), 'keys.json'));
    expect(err.message.startsWith('SIGNING_KEYS: keys.json: ')).toBe(true);
    expect(err.message).toContain(text);
    expect(err.message).not.toMatch(/[\r\n]/);
  });

  it('keeps a kid with a newline in it to one line', async () => {
    const a = { ...(await generateSigningJwk()), kid: 'a\nb' };
    const err = await configErrorOf(parseKeySet(keySetJson([a, a]), 'keys.json'));
    expect(err.message).not.toMatch(/[\r\n]/);
  });
});

describe('SIGNING_ALGORITHMS', () => {
  it('is EdDSA and ES256', () => {
    expect(SIGNING_ALGORITHMS).toEqual(['EdDSA', 'ES256']);
  });
});

describe('signJws and verifyJwsSignature', () => {
  async function oneKey(alg: SigningAlgorithm) {
    const jwk = await generateSigningJwk(alg);
    return { jwk, key: (await parseKeySet(keySetJson([jwk]), 'test')).active };
  }
  const claims = { sid: 's-1', roles: ['a', 'b'], scope: 'a b', iss: 'https://i.example', aud: 'x', sub: 'u-1', iat: 1_800_000_000, exp: 1_800_000_060 };

  it.each<SigningAlgorithm>(['EdDSA', 'ES256'])('%s: KeyObjects made at import match the JWK', async (alg) => {
    const { jwk, key } = await oneKey(alg);
    expect(key.privateKeyObject.type).toBe('private');
    expect(key.publicKeyObject.type).toBe('public');
    expect(key.privateKeyObject.asymmetricKeyType).toBe(alg === 'EdDSA' ? 'ed25519' : 'ec');
    expect(key.publicKeyObject.export({ format: 'jwk' })).toMatchObject({ kty: jwk.kty, crv: jwk.crv, x: jwk.x });
    expect(key.privateKeyObject.export({ format: 'jwk' }).d).toBe(jwk.d);
  });

  it.each<SigningAlgorithm>(['EdDSA', 'ES256'])('%s: a compact JWS, header {alg, kid, ...header} in that order, claims as given, that jose verifies', async (alg) => {
    const { key } = await oneKey(alg);
    const token = await signJws(key, { typ: 'test+jwt' }, claims);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    expect(Buffer.from(header, 'base64url').toString()).toBe(JSON.stringify({ alg, kid: key.kid, typ: 'test+jwt' }));
    expect(Buffer.from(payload, 'base64url').toString()).toBe(JSON.stringify(claims));
    expect(Buffer.from(signature, 'base64url')).toHaveLength(64); // ES256 as r‖s, not DER
    const { payload: verified, protectedHeader } = await jwtVerify(token, await importJWK(key.publicJwk, alg), {
      currentDate: new Date(claims.iat * 1000),
      typ: 'test+jwt',
    });
    expect(verified).toEqual(claims);
    expect(protectedHeader).toEqual({ alg, kid: key.kid, typ: 'test+jwt' });
  });

  it.each<SigningAlgorithm>(['EdDSA', 'ES256'])('%s: verifyJwsSignature accepts the signature and nothing else', async (alg) => {
    const { key } = await oneKey(alg);
    const { key: other } = await oneKey(alg);
    const token = await signJws(key, { typ: 'test+jwt' }, claims);
    const input = Buffer.from(token.slice(0, token.lastIndexOf('.')));
    const signature = Buffer.from(token.slice(token.lastIndexOf('.') + 1), 'base64url');
    expect(await verifyJwsSignature(key, input, signature)).toBe(true);
    expect(await verifyJwsSignature(other, input, signature)).toBe(false);
    expect(await verifyJwsSignature(key, Buffer.concat([input, Buffer.from('x')]), signature)).toBe(false);
    expect(await verifyJwsSignature(key, input, signature.subarray(1))).toBe(false);
    expect(await verifyJwsSignature(key, input, Buffer.alloc(0))).toBe(false);
  });

  it('uses the kid the key has when called (a copy with another kid names that kid)', async () => {
    const { key } = await oneKey('EdDSA');
    const token = await signJws({ ...key, kid: 'renamed' }, { typ: 'test+jwt' }, claims);
    expect(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString())).toEqual({ alg: 'EdDSA', kid: 'renamed', typ: 'test+jwt' });
  });

  it('refuses an iat, nbf or exp that is not a finite number, as jose does', async () => {
    const { key } = await oneKey('EdDSA');
    for (const claim of ['iat', 'nbf', 'exp']) {
      await expect(signJws(key, { typ: 'test+jwt' }, { ...claims, [claim]: Number.NaN })).rejects.toThrow(
        new TypeError(`"${claim}" claim must be a finite number`),
      );
    }
    expect(decodeJwt(await signJws(key, { typ: 'test+jwt' }, { ...claims, nbf: claims.iat }))).toMatchObject({ nbf: claims.iat });
  });
});

describe('keySetJson and rotateKeySetJson', () => {
  it('pretty-prints a JWK Set that parses back', async () => {
    const jwk = await generateSigningJwk();
    const json = keySetJson([jwk]);
    expect(json).toContain('\n  "keys": [');
    expect(JSON.parse(json)).toEqual({ keys: [jwk] });
  });

  it('puts a new active key first and keeps every old key after it, and says its kid and how many were kept', async () => {
    const old = [await generateSigningJwk(), await generateSigningJwk('ES256')];
    const result = await rotateKeySetJson(keySetJson(old));
    const rotated = JSON.parse(result.json) as { keys: PrivateSigningJwk[] };
    expect(rotated.keys).toHaveLength(3);
    expect(rotated.keys.slice(1)).toEqual(old);
    expect(rotated.keys[0]).toMatchObject({ alg: 'EdDSA', use: 'sig', d: expect.any(String) });
    expect(old.map((jwk) => jwk.kid)).not.toContain(rotated.keys[0]?.kid);
    expect(result.kid).toBe(rotated.keys[0]?.kid);
    expect(result.kept).toBe(2);
    expect(result.json).toBe(keySetJson(rotated.keys));
  });

  it('rotates to an ES256 key when asked', async () => {
    const result = await rotateKeySetJson(keySetJson([await generateSigningJwk()]), 'ES256');
    const rotated = JSON.parse(result.json) as {
      keys: PrivateSigningJwk[];
    };
    expect(rotated.keys[0]).toMatchObject({ alg: 'ES256', kty: 'EC', crv: 'P-256' });
    expect(result.kid).toBe(rotated.keys[0]?.kid);
    expect(result.kept).toBe(1);
  });

  it('refuses to rotate something that is not a valid key set', async () => {
    const err = await configErrorOf(rotateKeySetJson('{"keys": []}'));
    expect(err.message).toMatch(/^SIGNING_KEYS: /);
  });
});

describe('loadKeySetFile', () => {
  it('loads a key set file', async () => {
    const path = join(await tempDir(), 'keys.json');
    const jwk = await generateSigningJwk();
    await writeFile(path, keySetJson([jwk]));
    expect((await loadKeySetFile(path)).active.kid).toBe(jwk.kid);
  });

  it('says which file it cannot read and why', async () => {
    const path = join(await tempDir(), 'missing.json');
    const err = await configErrorOf(loadKeySetFile(path));
    expect(err.message).toBe(`SIGNING_KEYS: cannot read ${path}: ENOENT`);
  });

  it('names the file in a validation error', async () => {
    const path = join(await tempDir(), 'keys.json');
    await writeFile(path, '{"keys": []}');
    expect((await configErrorOf(loadKeySetFile(path))).message).toMatch(`SIGNING_KEYS: ${path}: `);
  });
});

describe('loadOrCreateDevKeySet', () => {
  it('creates an owner-only key file once, and keeps the key across restarts', async () => {
    const dir = join(await tempDir(), '.tessera');
    const first = await loadOrCreateDevKeySet(dir);
    expect(first.created).toBe(true);
    expect(first.path).toBe(join(dir, 'signing-keys.json'));
    expect((await stat(first.path)).mode & 0o777).toBe(0o600);
    expect(first.keySet.active.alg).toBe('EdDSA');

    const second = await loadOrCreateDevKeySet(dir);
    expect(second.created).toBe(false);
    expect(second.keySet.active.kid).toBe(first.keySet.active.kid);
    expect(JSON.parse(await readFile(first.path, 'utf8')).keys).toHaveLength(1);
  });

  it('keeps sessions valid across a restart: a token from before verifies after', async () => {
    const dir = await tempDir();
    const clock = new ManualClock();
    const before = makeService((await loadOrCreateDevKeySet(dir)).keySet, clock);
    const { token } = await before.issue({ userId: newId(), sessionId: newId(), roles: [] });
    const after = makeService((await loadOrCreateDevKeySet(dir)).keySet, clock);
    expect((await after.verify(token)).ok).toBe(true);
  });

  it('gives two processes starting together the same key', async () => {
    const dir = await tempDir();
    const [a, b] = await Promise.all([loadOrCreateDevKeySet(dir), loadOrCreateDevKeySet(dir)]);
    expect(a.keySet.active.kid).toBe(b.keySet.active.kid);
    expect([a.created, b.created].filter(Boolean)).toHaveLength(1);
  });
});
