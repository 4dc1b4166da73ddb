import { createHash } from 'node:crypto';
import { pooledRandomBytes, type RandomBytes } from '../../random.js';

/**
 * Recovery codes: 10 per user, each 16 characters of Crockford's base32 (80 bits), shown as
 * `XXXX-XXXX-XXXX-XXXX` once, stored only as SHA-256 hashes (80 random bits need no slow hash:
 * a stolen hash cannot be reversed by guessing), each spent by its first use.
 */
export const RECOVERY_CODE_COUNT = 10;
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const LENGTH = 16;

export function newRecoveryCodes(random: RandomBytes = pooledRandomBytes): string[] {
  return Array.from({ length: RECOVERY_CODE_COUNT }, () => {
    const bytes = random(LENGTH);
    const chars = [...bytes].map((b) => ALPHABET[b & 31]!).join('');
    return chars.match(/.{4}/g)!.join('-');
  });
}

/** The code as typed, normalized (dashes, spaces and case ignored; O→0, I/L→1 as Crockford reads them); null if not one. */
export function normalizeRecoveryCode(code: string): string | null {
  const plain = code.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
  return plain.length === LENGTH && [...plain].every((c) => ALPHABET.includes(c)) ? plain : null;
}

export function hashRecoveryCode(normalized: string): string {
  return createHash('sha256').update(`tessera-recovery-code:${normalized}`).digest('hex');
}
