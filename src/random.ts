import { randomFillSync } from 'node:crypto';

export type RandomBytes = (size: number) => Buffer;

const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

/**
 * Cryptographically random bytes from a pool refilled 4 KiB at a time: a call per id or secret
 * costs a copy, not a trip into the system's generator. Every byte is handed out once, copied
 * into a buffer of its own.
 */
export function pooledRandomBytes(size: number): Buffer {
  if (size > POOL_BYTES / 4) return randomFillSync(Buffer.alloc(size));
  if (offset + size > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const bytes = Buffer.from(pool.subarray(offset, offset + size));
  offset += size;
  return bytes;
}
