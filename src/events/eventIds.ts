import { pooledRandomBytes, type RandomBytes } from '../random.js';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * The id of a store step's events: a ULID (48 bits of the step's time in ms, 80 random bits,
 * 26 characters of Crockford base32), so ids sort by time. The i-th event of the step is
 * `<ulid>-<i>` (from 1): one step can record several events (a login that ends the oldest
 * sessions) and each still has an id of its own. It is the webhook-id of the event's delivery.
 */
export function newEventStepId(time: number, random: RandomBytes = pooledRandomBytes): string {
  let out = '';
  let ms = Math.max(0, Math.floor(time));
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD[ms % 32]! + out;
    ms = Math.floor(ms / 32);
  }
  const bytes = random(10);
  // 80 bits = 16 groups of 5 bits.
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += CROCKFORD[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  return out;
}

/** The id of the `index`-th (from 1) event of a step. */
export function eventId(stepId: string, index: number): string {
  return `${stepId}-${index}`;
}

export const EVENT_ID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}-\d+$/;
