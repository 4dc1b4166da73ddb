import { pooledRandomBytes, type RandomBytes } from './random.js';

export type { RandomBytes } from './random.js';

/** Ids of users and sessions: 128 random bits, base64url (22 characters). */
export const ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;

export function newId(random: RandomBytes = pooledRandomBytes): string {
  return random(16).toString('base64url');
}
