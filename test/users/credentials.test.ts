import { describe, expect, it } from 'vitest';
import {
  PASSWORD_MAX_BYTES,
  PASSWORD_MIN_BYTES,
  checkSignupPassword,
  normalizeEmail,
  passwordBytes,
} from '../../src/users/credentials.js';

describe('normalizeEmail', () => {
  it('trims and lower-cases', () => {
    expect(normalizeEmail('  Alice@Example.COM ')).toBe('alice@example.com');
    expect(normalizeEmail('\tbob@example.org\n')).toBe('bob@example.org');
  });

  it('one address, one form: decomposed and composed é are equal', () => {
    const composed = 'Jos\u00e9@example.com';
    const decomposed = 'Jose\u0301@example.com';
    expect(composed).not.toBe(decomposed);
    expect(normalizeEmail(decomposed)).toBe(normalizeEmail(composed));
    expect(normalizeEmail(decomposed)).toBe('jos\u00e9@example.com');
  });

  it('keeps a normalized address as it is', () => {
    for (const email of ['a@b.co', 'first.last+tag@mail.example.co.uk', 'müller@bücher.de', "o'hara@example.ie"]) {
      expect(normalizeEmail(email)).toBe(email);
    }
  });

  it.each([
    '',
    '   ',
    'alice',
    'alice@',
    '@example.com',
    'alice@example',
    'alice@@example.com',
    'alice@bob@example.com',
    'ali ce@example.com',
    'alice@exa mple.com',
    'alice@example..com',
    'alice@.example.com',
    'alice@example.com.',
    'alice\u0000@example.com',
    'alice\u007f@example.com',
    'alice@example.com\u0000',
    'alice\u00a0@example.com',
    'alice\u2028@example.com',
    'alice\ud800@example.com',
  ])('%j is not an address', (raw) => {
    expect(normalizeEmail(raw)).toBeNull();
  });

  it('limits the local part to 64 bytes and the address to 254', () => {
    expect(normalizeEmail(`${'a'.repeat(64)}@example.com`)).not.toBeNull();
    expect(normalizeEmail(`${'a'.repeat(65)}@example.com`)).toBeNull();
    // 32 × 'é' is 64 bytes; 33 is 66 though only 33 characters.
    expect(normalizeEmail(`${'é'.repeat(32)}@example.com`)).not.toBeNull();
    expect(normalizeEmail(`${'é'.repeat(33)}@example.com`)).toBeNull();
    const domainOf = (length: number) => `${'d'.repeat(length - 4)}.com`;
    expect(normalizeEmail(`a@${domainOf(252)}`)).not.toBeNull(); // 254 in all
    expect(normalizeEmail(`a@${domainOf(253)}`)).toBeNull();
  });
});

describe('passwords', () => {
  it('the bounds are 8 and 1024 bytes', () => {
    expect(PASSWORD_MIN_BYTES).toBe(8);
    expect(PASSWORD_MAX_BYTES).toBe(1024);
  });

  it('counts UTF-8 bytes, not characters', () => {
    expect(passwordBytes('password')).toBe(8);
    expect(passwordBytes('€€€€')).toBe(12);
    expect(passwordBytes('🔑')).toBe(4);
  });

  it('counts after NFC', () => {
    expect(passwordBytes('e\u0301')).toBe(2); // é composed: 2 bytes, not 3
  });

  it('checkSignupPassword', () => {
    expect(checkSignupPassword('x'.repeat(7))).toBe('too_short');
    expect(checkSignupPassword('x'.repeat(8))).toBe('ok');
    expect(checkSignupPassword('x'.repeat(1024))).toBe('ok');
    expect(checkSignupPassword('x'.repeat(1025))).toBe('too_long');
    expect(checkSignupPassword('€€€')).toBe('ok'); // 3 characters, 9 bytes
    expect(checkSignupPassword('€'.repeat(342))).toBe('too_long'); // 1026 bytes
    expect(checkSignupPassword('')).toBe('too_short');
  });
});
