import { randomBytes } from 'node:crypto';

/** Ids of users and sessions: 128 random bits, base64url (22 characters). */
export const ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;

export type RandomBytes = (size: number) => Buffer;

export function newId(random: RandomBytes = randomBytes): string {
  return random(16).toString('base64url');
}
