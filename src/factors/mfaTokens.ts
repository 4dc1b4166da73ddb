import { createHash } from 'node:crypto';
import { ID_PATTERN } from '../ids.js';
import { pooledRandomBytes, type RandomBytes } from '../random.js';

/**
 * `mfaToken`: `<userId>.<secret>`, 256 random bits of secret in base64url. The user id says
 * whose ticket it is (and which Redis slot holds it), so a token is bound to its user by
 * construction; the store keeps only the SHA-256 of the secret.
 */
export interface MfaTokenParts {
  userId: string;
  tokenHash: string;
}

const SECRET = /^[A-Za-z0-9_-]{43}$/;

export function newMfaToken(userId: string, random: RandomBytes = pooledRandomBytes): { token: string; tokenHash: string } {
  const secret = random(32).toString('base64url');
  return { token: `${userId}.${secret}`, tokenHash: hashOf(secret) };
}

/** null for anything that is not a token of ours (no store round trip then). */
export function parseMfaToken(token: string | null | undefined): MfaTokenParts | null {
  if (typeof token !== 'string' || token.length > 100) return null;
  const [userId, secret, ...rest] = token.split('.');
  if (rest.length > 0 || !userId || !secret || !ID_PATTERN.test(userId) || !SECRET.test(secret)) return null;
  return { userId, tokenHash: hashOf(secret) };
}

function hashOf(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}
