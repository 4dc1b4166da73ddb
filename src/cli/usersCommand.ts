import { loadConfig } from '../config.js';
import { StoreUnavailableError } from '../errors.js';
import { NO_ORIGIN } from '../events/types.js';
import { newId } from '../ids.js';
import { createStore, StoreConnectError, type StoreSettings, usesEmbeddedStore } from '../store/createStore.js';
import type { Store, UserRecord } from '../store/types.js';
import { checkSignupPassword, normalizeEmail, PASSWORD_MAX_BYTES, PASSWORD_MIN_BYTES } from '../users/credentials.js';
import { PasswordHasher } from '../users/passwords.js';
import { CliError, type CliIO, firstLine, oneLine, UsageError } from './common.js';

export const DEFAULT_ROLES: readonly string[] = ['user'];

/** A role goes into the space-separated `scope` claim: no whitespace, controls or commas. */
const ROLE = /^[^\s\p{Cc},]{1,64}$/u;

/** `--roles a,b`: trimmed, without duplicates; `user` when absent. */
export function parseRoles(raw: string | undefined): string[] {
  if (raw === undefined) return [...DEFAULT_ROLES];
  const roles = [...new Set(raw.split(',').map((role) => role.trim()))];
  if (roles.length === 1 && roles[0] === '') throw new UsageError('--roles must name at least one role (e.g. --roles user,admin)');
  for (const role of roles) {
    if (!ROLE.test(role)) {
      throw new UsageError(
        `--roles: ${JSON.stringify(role)} is not a role name (1 to 64 characters, no spaces or control characters, comma-separated)`,
      );
    }
  }
  return roles;
}

/**
 * `tessera users add --email E [--roles a,b]`: creates a user in the Redis store the gateway
 * would use with the same environment (REDIS_URL, REDIS_KEY_PREFIX), with the password read
 * from the first line of standard input, and prints the new user's id.
 */
export async function usersAdd(
  args: { email?: string | undefined; roles?: string | undefined },
  io: CliIO,
): Promise<void> {
  if (args.email === undefined) throw new UsageError('users add needs --email E');
  const email = normalizeEmail(args.email);
  if (email === null) throw new CliError(`--email: ${JSON.stringify(args.email)} is not a valid email address`);
  const roles = parseRoles(args.roles);

  const config = loadConfig(io.env, io.cwd); // ConfigError: printed as it is
  if (usesEmbeddedStore(config)) {
    throw new CliError(
      'REDIS_URL is not set: users can only be added to a Redis store (the embedded store lives inside the server process; sign up through the API instead)',
    );
  }

  const password = firstLine(await io.readStdin());
  if (password === '') throw new CliError('no password on standard input (give it as its first line)');
  const strength = checkSignupPassword(password);
  if (strength === 'too_short') throw new CliError(`the password must be at least ${PASSWORD_MIN_BYTES} bytes long`);
  if (strength === 'too_long') throw new CliError(`the password must be at most ${PASSWORD_MAX_BYTES} bytes long`);

  const hasher = await PasswordHasher.create();
  const user: UserRecord = {
    id: newId(),
    email,
    passwordHash: await hasher.hash(password),
    roles,
    createdAt: Date.now(),
    // An operator made the account for this address: it counts as verified.
    emailVerified: true,
    disabled: false,
  };

  const store = await connectStore(config);
  try {
    const result = await store.createUser(user, NO_ORIGIN).catch((error: unknown) => {
      if (error instanceof StoreUnavailableError) {
        throw new CliError(`Redis did not answer: ${oneLine(error.cause ?? error)}`);
      }
      throw error;
    });
    if (result === 'email_taken') throw new CliError(`a user with the email ${email} already exists`);
  } finally {
    await store.close();
  }
  io.stdout.write(`${user.id}\n`);
}

/**
 * The store the gateway would use (REDIS_URL, or the configured Cluster or Sentinels), connected
 * now or failing with one line. The URL is not shown: it may carry a password.
 */
export async function connectStore(config: StoreSettings): Promise<Store> {
  try {
    return await createStore(config, { connect: 'now' });
  } catch (error) {
    if (error instanceof StoreConnectError) throw new CliError(`${error.message}: ${oneLine(error.cause)}`);
    throw error;
  }
}
