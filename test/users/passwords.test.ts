import * as argon2 from '@node-rs/argon2';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { PasswordHasher, hashParameters } from '../../src/users/passwords.js';

// Pass-through spy on argon2's verify, to see which hash each verification ran against.
vi.mock('@node-rs/argon2', async (importOriginal) => {
  const original = await importOriginal<typeof import('@node-rs/argon2')>();
  return { ...original, verify: vi.fn(original.verify) };
});

const OWASP = { algorithm: 'argon2id', memoryCost: 19456, timeCost: 2, parallelism: 1 };

let hasher: PasswordHasher;
let stored: string;

beforeAll(async () => {
  hasher = await PasswordHasher.create();
  stored = await hasher.hash('correct horse battery staple');
});

describe('PasswordHasher', () => {
  it("hashes with argon2id at OWASP's parameters", () => {
    expect(stored).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    expect(hashParameters(stored)).toEqual(OWASP);
  });

  it('salts every hash', async () => {
    expect(await hasher.hash('correct horse battery staple')).not.toBe(stored);
  });

  it('accepts the right password and refuses a wrong one', async () => {
    expect(await hasher.verify(stored, 'correct horse battery staple')).toBe(true);
    expect(await hasher.verify(stored, 'correct horse battery stapler')).toBe(false);
    expect(await hasher.verify(stored, '')).toBe(false);
  });

  it('matches the same password whether composed or decomposed (NFC)', async () => {
    const hash = await hasher.hash('caf\u00e9 au lait');
    expect(await hasher.verify(hash, 'cafe\u0301 au lait')).toBe(true);
  });

  it('answers false for an unknown account (null hash)', async () => {
    expect(await hasher.verify(null, 'correct horse battery staple')).toBe(false);
    expect(await hasher.verify(null, '')).toBe(false);
  });

  it.each([
    '',
    'not a hash',
    '$argon2id$v=19$m=19456,t=2,p=1$',
    '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$!!not-base64!!',
    '$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy',
  ])(
    'answers false for a malformed stored hash %j',
    async (malformed) => {
      expect(await hasher.verify(malformed, 'correct horse battery staple')).toBe(false);
    },
  );

  it('an unknown email costs a real verification, at the parameters of real hashes', async () => {
    expect(hasher.dummyHashParameters()).toEqual(OWASP);
    expect(hasher.dummyHashParameters()).toEqual(hashParameters(stored));

    const spy = vi.mocked(argon2.verify);
    spy.mockClear();
    await hasher.verify(null, 'whatever password');
    expect(spy).toHaveBeenCalledTimes(1);
    const [dummy, password] = spy.mock.calls[0] ?? [];
    expect(password).toBe('whatever password');
    expect(typeof dummy).toBe('string');
    expect(hashParameters(dummy as string)).toEqual(OWASP);
    expect(dummy).not.toBe(stored);

    // The same one verification as for a known account with a wrong password.
    spy.mockClear();
    await hasher.verify(stored, 'whatever password');
    expect(spy).toHaveBeenCalledTimes(1);
  });

  it('each hasher has its own dummy hash', async () => {
    const spy = vi.mocked(argon2.verify);
    const other = await PasswordHasher.create();
    spy.mockClear();
    await hasher.verify(null, 'x');
    await other.verify(null, 'x');
    const [first, second] = spy.mock.calls.map((call) => call[0]);
    expect(first).not.toBe(second);
  });
});
