import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { packOpaque, unpackOpaque } from '../../src/store/redisRecords.js';
import { packUserAgent, unpackUserAgent } from '../../src/store/userAgentCodec.js';

describe('stored User-Agents', () => {
  const browsers = [
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0',
    'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
    'Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
    'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
  ];

  it("come back exactly as sent, a browser's in a fraction of its size", () => {
    for (const ua of browsers) {
      const packed = packUserAgent(ua);
      expect(unpackUserAgent(packed)).toBe(ua);
      expect(packed.length).toBeLessThan(ua.length / 4);
    }
  });

  it('come back exactly whatever they hold; what does not compress is kept as it is, plus one byte', () => {
    const others = ['curl/8.5.0', 'ExampleApp/3.2 (iOS 17.4.1) Alamofire/5.9.1', 'Ünïcødé agent ✓', 'x'.repeat(512), randomBytes(300).toString('latin1')];
    for (const ua of others) {
      const packed = packUserAgent(ua);
      expect(unpackUserAgent(packed)).toBe(ua);
      expect(packed.length).toBeLessThanOrEqual(Buffer.byteLength(ua) + 1);
    }
    expect(unpackUserAgent(packUserAgent('curl/8.5.0'))).toBe('curl/8.5.0');
  });

  it('no User-Agent is stored as nothing, and comes back as null', () => {
    expect(packUserAgent(null)).toHaveLength(0);
    expect(packUserAgent('')).toHaveLength(0);
    expect(unpackUserAgent(Buffer.alloc(0))).toBeNull();
  });

  it('a value in a format this version does not know is an error, not a wrong answer', () => {
    expect(() => unpackUserAgent(Buffer.of(9, 1, 2))).toThrow(/format 9/);
  });
});

describe('stored hashes and sealed values', () => {
  it('keep a canonical base64url string as its bytes, anything else as text, and give back the same string', () => {
    const b64 = randomBytes(16).toString('base64url');
    expect(packOpaque(b64)).toHaveLength(17);
    for (const value of [b64, 'hash-0', 'abc', 'abcd', '', 'ünï', randomBytes(61).toString('base64url')]) {
      expect(unpackOpaque(packOpaque(value))).toBe(value);
    }
  });

  it('never give two strings the same stored form (the scripts compare stored forms)', () => {
    // Strings that decode to bytes and strings kept as text, side by side.
    const values = ['abc', 'abd', 'AAAA', 'AAAB', 'AAA', 'AA', 'A', 'hash-1', 'hash-2'];
    const stored = new Set(values.map((v) => packOpaque(v).toString('hex')));
    expect(stored.size).toBe(values.length);
  });

  it('refuse a value the record cannot hold', () => {
    expect(() => packOpaque('x'.repeat(400))).toThrow(RangeError);
    expect(() => packOpaque('#'.repeat(255))).toThrow(RangeError);
    expect(unpackOpaque(packOpaque('#'.repeat(254)))).toBe('#'.repeat(254));
  });
});
