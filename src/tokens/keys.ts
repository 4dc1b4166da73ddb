import { createPrivateKey, createPublicKey, hkdfSync, type KeyObject, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { access, link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey } from 'jose';
import { ConfigError } from '../errors.js';
import { newId } from '../ids.js';
import type { PublicJwk, SigningAlgorithm } from './types.js';

/** A private signing key as kept in a SIGNING_KEYS file (a JWK Set of these). */
export interface PrivateSigningJwk extends PublicJwk {
  d: string;
}

/** The JWS algorithms Tessera signs and verifies with, and the only ones it accepts. */
export const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = ['EdDSA', 'ES256'];

export interface SigningKey {
  kid: string;
  alg: SigningAlgorithm;
  /** WebCrypto keys, for jose. */
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  /** The same keys as node:crypto KeyObjects, made once at import: what signJws and verifyJwsSignature use. */
  privateKeyObject: KeyObject;
  publicKeyObject: KeyObject;
  publicJwk: PublicJwk;
}

export interface KeySet {
  /** Signs new tokens. */
  active: SigningKey;
  /** Every key that verifies, the active one first. */
  keys: SigningKey[];
  publicJwks(): PublicJwk[];
  /** HMAC keys for refresh-token tags, one per key, the active one first. */
  refreshTagKeys: Buffer[];
}

const CURVES: Record<SigningAlgorithm, { kty: string; crv: string }> = {
  EdDSA: { kty: 'OKP', crv: 'Ed25519' },
  ES256: { kty: 'EC', crv: 'P-256' },
};
const REFRESH_TAG_SALT = 'tessera/refresh-token-tag/v1';
const DEV_KEY_FILE = 'signing-keys.json';

/** A new private signing key; its kid is its RFC 7638 thumbprint. */
export async function generateSigningJwk(alg: SigningAlgorithm = 'EdDSA'): Promise<PrivateSigningJwk> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  const { kty, crv, x, y, d } = jwk as Record<string, string | undefined>;
  return normalized({ kid, alg, use: 'sig', kty: kty ?? '', crv: crv ?? '', x: x ?? '', y, d: d ?? '' });
}

/** A JWK Set file's text, pretty-printed. */
export function keySetJson(jwks: PrivateSigningJwk[]): string {
  return `${JSON.stringify({ keys: jwks.map(normalized) }, null, 2)}\n`;
}

/**
 * The key set with a new active key first and every old key kept after it, for verification;
 * `kid` is the new key's, `kept` how many old keys follow it.
 */
export async function rotateKeySetJson(
  json: string,
  alg: SigningAlgorithm = 'EdDSA',
  source = 'key set',
  { stage = false }: { stage?: boolean } = {},
): Promise<{ json: string; kid: string; kept: number }> {
  const old = validateKeySetJson(json, source);
  const fresh = await generateSigningJwk(alg);
  return { json: keySetJson(stage ? [...old, fresh] : [fresh, ...old]), kid: fresh.kid, kept: old.length };
}

/**
 * The same set with the key `kid` moved first (the active one, which signs); null when the set
 * has no such key. The others keep their order.
 */
export function activateKeySetJson(json: string, kid: string, source = 'key set'): { json: string; previous: string } | null {
  const keys = validateKeySetJson(json, source);
  const chosen = keys.find((jwk) => jwk.kid === kid);
  if (!chosen) return null;
  return { json: keySetJson([chosen, ...keys.filter((jwk) => jwk !== chosen)]), previous: keys[0]!.kid };
}

/**
 * A compact JWS of `claims` signed by `key`, its protected header `{ alg, kid, ...header }` with
 * the key's own alg and kid (read when called). Signed with node:crypto on libuv's thread pool:
 * jose's WebCrypto path cost the event loop about as much again as the signature itself.
 * Like jose, refuses an iat, nbf or exp that is a number but not a finite one.
 */
export async function signJws(
  key: SigningKey,
  header: { typ: string },
  claims: Record<string, unknown>,
): Promise<string> {
  for (const claim of ['iat', 'nbf', 'exp']) {
    const value = claims[claim];
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError(`"${claim}" claim must be a finite number`);
  }
  const signingInput = `${base64urlJson({ alg: key.alg, kid: key.kid, ...header })}.${base64urlJson(claims)}`;
  const signature = await new Promise<Buffer>((resolve, reject) => {
    cryptoSign(digestOf(key), Buffer.from(signingInput, 'latin1'), keyOptions(key, key.privateKeyObject), (error, result) =>
      error ? reject(error) : resolve(result),
    );
  });
  return `${signingInput}.${signature.toString('base64url')}`;
}

/**
 * True only for a good JWS signature by `key` over `signingInput` (ES256 as r‖s, as JWS has it);
 * anything odd (a signature of the wrong length …) is false. Checked on libuv's thread pool.
 */
export function verifyJwsSignature(key: SigningKey, signingInput: Buffer, signature: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    try {
      cryptoVerify(digestOf(key), signingInput, keyOptions(key, key.publicKeyObject), signature, (error, valid) =>
        resolve(!error && valid === true),
      );
    } catch {
      resolve(false);
    }
  });
}

/** The digest node:crypto is given: none for Ed25519 (it hashes internally), SHA-256 for ES256. */
function digestOf(key: SigningKey): 'sha256' | null {
  return key.alg === 'ES256' ? 'sha256' : null;
}

/** ES256 signatures as JWS wants them: r‖s, 64 bytes, not DER. */
function keyOptions(key: SigningKey, object: KeyObject): KeyObject | { key: KeyObject; dsaEncoding: 'ieee-p1363' } {
  return key.alg === 'ES256' ? { key: object, dsaEncoding: 'ieee-p1363' } : object;
}

function base64urlJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** Validates and imports a JWK Set of private keys; any problem is a one-line ConfigError. */
export async function parseKeySet(json: string, source: string): Promise<KeySet> {
  const jwks = validateKeySetJson(json, source);
  const keys = await Promise.all(jwks.map((jwk, i) => importSigningKey(jwk, source, i + 1)));
  const [active] = keys;
  if (!active) throw configError(source, 'the "keys" array is empty');
  return {
    active,
    keys,
    publicJwks: () => keys.map((key) => ({ ...key.publicJwk })),
    refreshTagKeys: jwks.map(refreshTagKey),
  };
}

export async function loadKeySetFile(path: string): Promise<KeySet> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`SIGNING_KEYS: cannot read ${path}: ${errorCode(err)}`);
  }
  return parseKeySet(text, path);
}

/** Development only: keeps `<dir>/signing-keys.json`, generating one EdDSA key the first time. */
export async function loadOrCreateDevKeySet(
  dir: string,
): Promise<{ keySet: KeySet; path: string; created: boolean }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, DEV_KEY_FILE);
  const created = !(await exists(path)) && (await createFileOnce(path, keySetJson([await generateSigningJwk()])));
  return { keySet: await loadKeySetFile(path), path, created };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** Writes a temporary file then links it into place: readers never see a half-written file. */
async function createFileOnce(path: string, text: string): Promise<boolean> {
  const tmp = `${path}.${newId()}.tmp`;
  await writeFile(tmp, text, { mode: 0o600, flag: 'wx' });
  try {
    await link(tmp, path);
    return true;
  } catch (err) {
    if (errorCode(err) === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(tmp);
  }
}

function validateKeySetJson(json: string, source: string): PrivateSigningJwk[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw configError(source, 'not valid JSON');
  }
  if (!isRecord(parsed) || !Array.isArray(parsed.keys)) {
    throw configError(source, 'not a JWK Set (an object with a "keys" array)');
  }
  if (parsed.keys.length === 0) throw configError(source, 'the "keys" array is empty');
  const jwks = parsed.keys.map((key: unknown, i: number) => validateJwk(key, source, i + 1));
  checkUniqueKids(jwks, source);
  return jwks;
}

function validateJwk(value: unknown, source: string, n: number): PrivateSigningJwk {
  const fail = (what: string): never => {
    throw configError(source, `key ${n} ${what}`);
  };
  if (!isRecord(value)) return fail('is not an object');
  const { kid, alg, use, kty, crv, x, y, d } = value;
  if (!isNonEmptyString(kid)) return fail('has no "kid" (a non-empty string)');
  if (alg !== 'EdDSA' && alg !== 'ES256') return fail('has an "alg" other than "EdDSA" or "ES256"');
  if (use !== undefined && use !== 'sig') return fail('has a "use" other than "sig"');
  const want = CURVES[alg];
  if (kty !== want.kty || crv !== want.crv) return fail(`with alg ${alg} must have kty ${want.kty} and crv ${want.crv}`);
  if (!isNonEmptyString(x) || (alg === 'ES256' && !isNonEmptyString(y))) return fail('has no public part ("x"/"y")');
  if (!isNonEmptyString(d)) return fail('has no "d" (it must be a private key)');
  return normalized({ kid, alg, use: 'sig', kty, crv, x, y: typeof y === 'string' ? y : undefined, d });
}

function checkUniqueKids(jwks: PrivateSigningJwk[], source: string): void {
  const seen = new Set<string>();
  jwks.forEach((jwk, i) => {
    if (seen.has(jwk.kid)) throw configError(source, `key ${i + 1} repeats the kid "${jwk.kid}"`);
    seen.add(jwk.kid);
  });
}

async function importSigningKey(jwk: PrivateSigningJwk, source: string, n: number): Promise<SigningKey> {
  const publicJwk = toPublicJwk(jwk);
  const material = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, ...(jwk.y ? { y: jwk.y } : {}) };
  try {
    const privateKey = (await importJWK({ ...material, d: jwk.d }, jwk.alg)) as CryptoKey;
    const publicKey = (await importJWK(material, jwk.alg)) as CryptoKey;
    return {
      kid: jwk.kid,
      alg: jwk.alg,
      privateKey,
      publicKey,
      // From the JWK itself, not KeyObject.from(CryptoKey): jose's keys are not extractable, and
      // Node 24+ deprecates converting those (DEP0204).
      privateKeyObject: createPrivateKey({ key: { ...material, d: jwk.d }, format: 'jwk' }),
      publicKeyObject: createPublicKey({ key: material, format: 'jwk' }),
      publicJwk,
    };
  } catch (err) {
    // WebCrypto also refuses a "d" that does not belong to "x"/"y".
    throw configError(source, `key ${n} cannot be used: ${oneLine(err)}`);
  }
}

function toPublicJwk(jwk: PrivateSigningJwk): PublicJwk {
  const { kid, kty, alg, crv, x, y } = jwk;
  return { kid, kty, alg, use: 'sig', crv, x, ...(y !== undefined ? { y } : {}) };
}

function normalized(jwk: PrivateSigningJwk): PrivateSigningJwk {
  return { ...toPublicJwk(jwk), d: jwk.d };
}

function refreshTagKey(jwk: PrivateSigningJwk): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(jwk.d, 'base64url'), REFRESH_TAG_SALT, jwk.kid, 32));
}

function configError(source: string, problem: string): ConfigError {
  return new ConfigError(oneLine(`SIGNING_KEYS: ${source}: ${problem}`));
}

function oneLine(value: unknown): string {
  const text = value instanceof Error ? value.message : String(value);
  return text.replace(/\s*[\r\n]+\s*/g, ' ');
}

function errorCode(err: unknown): string {
  const code = isRecord(err) ? err.code : undefined;
  return typeof code === 'string' ? code : oneLine(err);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}
