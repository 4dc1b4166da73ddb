import { randomBytes } from 'node:crypto';
import { hash, parseOptions, verify, type Algorithm, type Options } from '@node-rs/argon2';

/**
 * `Algorithm` is a `const enum` whose runtime object is empty, so a transpiler that compiles
 * files one by one (Vitest) would turn `Algorithm.Argon2id` into `undefined`: spell the value.
 */
const ARGON2ID: Algorithm = 2;

/** OWASP's argon2id parameters: m=19456 KiB, t=2, p=1. */
export const ARGON2_OPTIONS: Readonly<Options> = Object.freeze({
  algorithm: ARGON2ID,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
});

/** The parameters a stored hash was made with. */
export interface HashParameters {
  algorithm: 'argon2id' | 'argon2i' | 'argon2d';
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

const ALGORITHM_NAMES = ['argon2d', 'argon2i', 'argon2id'] as const;

/** Parameters of a PHC-format argon2 hash; null when it is not one. */
export function hashParameters(encoded: string): HashParameters | null {
  try {
    const parsed = parseOptions(encoded);
    const algorithm = ALGORITHM_NAMES[parsed.algorithm];
    if (algorithm === undefined) return null;
    const { memoryCost, timeCost, parallelism } = parsed;
    return { algorithm, memoryCost, timeCost, parallelism };
  } catch {
    return null;
  }
}

/**
 * Hashes and checks passwords (argon2id). Passwords are NFC-normalized first, as docs/contract.md
 * section 3 measures them, so the same password typed on another keyboard still matches.
 */
export class PasswordHasher {
  private constructor(private readonly dummyHash: string) {}

  /** Computes, at start, the hash that unknown emails are checked against. */
  static async create(): Promise<PasswordHasher> {
    const dummy = await hash(randomBytes(32).toString('base64url'), ARGON2_OPTIONS);
    return new PasswordHasher(dummy);
  }

  hash(password: string): Promise<string> {
    return hash(password.normalize('NFC'), ARGON2_OPTIONS);
  }

  /**
   * True when `password` matches `stored`. With `stored === null` (no such account) it still
   * runs one verification, against the dummy hash, and answers false: an unknown email costs
   * what a wrong password costs. A malformed stored hash answers false.
   */
  async verify(stored: string | null, password: string): Promise<boolean> {
    const normalized = password.normalize('NFC');
    try {
      const matches = await verify(stored ?? this.dummyHash, normalized);
      return stored !== null && matches;
    } catch {
      return false;
    }
  }

  /** The parameters of the dummy hash: the same as those of every hash this class makes. */
  dummyHashParameters(): HashParameters {
    const parameters = hashParameters(this.dummyHash);
    if (parameters === null) throw new Error('the dummy hash is not an argon2 hash');
    return parameters;
  }
}
