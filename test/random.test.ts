import { describe, expect, it } from 'vitest';
import { pooledRandomBytes } from '../src/random.js';

describe('pooledRandomBytes', () => {
  it('hands out buffers of the asked size that later calls never change', () => {
    const first = pooledRandomBytes(32);
    const copy = Buffer.from(first);
    const seen = new Set<string>([first.toString('hex')]);
    // Far more than one pool's worth, so the pool is refilled several times.
    for (let i = 0; i < 2_000; i++) {
      const bytes = pooledRandomBytes(i % 2 ? 32 : 12);
      expect(bytes.length).toBe(i % 2 ? 32 : 12);
      seen.add(bytes.toString('hex'));
    }
    expect(first.equals(copy)).toBe(true);
    expect(seen.size).toBe(2_001);
  });

  it('serves large requests directly', () => {
    const big = pooledRandomBytes(5_000);
    expect(big.length).toBe(5_000);
    expect(big.equals(Buffer.alloc(5_000))).toBe(false);
  });
});
