import { AdminService } from '../accounts/adminService.js';
import { systemClock } from '../clock.js';
import { loadConfig } from '../config.js';
import { StoreUnavailableError, TesseraError } from '../errors.js';
import { NO_ORIGIN } from '../events/types.js';
import { usesEmbeddedStore } from '../store/createStore.js';
import type { Store, UserRecord } from '../store/types.js';
import { normalizeEmail } from '../users/credentials.js';
import { CliError, type CliIO, oneLine, UsageError } from './common.js';
import { connectStore, parseRoles } from './usersCommand.js';

/*
 * The administration of section 7 from the command line (`tessera users …`, `tessera sessions …`),
 * on the Redis store the gateway would use with the same environment. The same AdminService as the
 * admin GraphQL fields, with the operator as the caller: the store's steps record the events and
 * push ended sessions to every gateway instance.
 */

type Args = Record<string, string | undefined>;

async function withAdmin<T>(io: CliIO, run: (admin: AdminService, store: Store) => Promise<T>): Promise<T> {
  const config = loadConfig(io.env, io.cwd);
  if (usesEmbeddedStore(config)) {
    throw new CliError('REDIS_URL is not set: the embedded store lives inside the server process (use the admin GraphQL fields instead)');
  }
  const store = await connectStore(config);
  try {
    const admin = new AdminService({ store, clock: systemClock, revocations: { noteRevoked: () => undefined } });
    return await run(admin, store);
  } catch (error) {
    if (error instanceof StoreUnavailableError) throw new CliError(`Redis did not answer: ${oneLine(error.cause ?? error)}`);
    if (error instanceof TesseraError) throw new CliError(error.message);
    throw error;
  } finally {
    await store.close();
  }
}

function emailOf(args: Args, command: string): string {
  if (args.email === undefined) throw new UsageError(`${command} needs --email E`);
  const email = normalizeEmail(args.email);
  if (email === null) throw new CliError(`--email: ${JSON.stringify(args.email)} is not a valid email address`);
  return email;
}

async function userByEmail(admin: AdminService, email: string): Promise<UserRecord> {
  const user = await admin.findByEmail(null, email);
  if (!user) throw new CliError(`no user has the email ${email}`);
  return user;
}

function userLine(user: UserRecord): string {
  const flags = [user.emailVerified ? 'verified' : 'unverified', ...(user.disabled ? ['disabled'] : []), ...(user.passwordHash ? [] : ['no-password'])];
  return `${user.id}\t${user.email}\t${user.roles.join(',')}\t${flags.join(',')}\n`;
}

/** `users list [--email-prefix P]`: every user in email order, one tab-separated line each (id, email, roles, flags). */
export async function usersList(args: Args, io: CliIO): Promise<void> {
  await withAdmin(io, async (admin) => {
    let after: string | null = null;
    for (;;) {
      const page = await admin.users(null, { first: 100, after, emailPrefix: args['email-prefix'] ?? null });
      for (const user of page.users) io.stdout.write(userLine(user));
      if (!page.hasNextPage || page.endCursor === null) return;
      after = page.endCursor;
    }
  });
}

/** `users disable|enable|delete --email E`. */
export function usersChange(action: 'disable' | 'enable' | 'delete') {
  return async (args: Args, io: CliIO): Promise<void> => {
    const email = emailOf(args, `users ${action}`);
    await withAdmin(io, async (admin) => {
      const user = await userByEmail(admin, email);
      if (action === 'delete') {
        await admin.deleteUser(null, user.id, NO_ORIGIN);
        io.stdout.write(`deleted ${user.id} ${user.email}\n`);
        return;
      }
      const changed = action === 'disable' ? await admin.disableUser(null, user.id, NO_ORIGIN) : await admin.enableUser(null, user.id, NO_ORIGIN);
      io.stdout.write(userLine(changed));
    });
  };
}

/** `users roles --email E --set a,b`. */
export async function usersRoles(args: Args, io: CliIO): Promise<void> {
  const email = emailOf(args, 'users roles');
  if (args.set === undefined) throw new UsageError('users roles needs --set a,b');
  const roles = parseRoles(args.set);
  await withAdmin(io, async (admin) => {
    const user = await userByEmail(admin, email);
    io.stdout.write(userLine(await admin.setUserRoles(null, user.id, roles, NO_ORIGIN)));
  });
}

/** `sessions list --email E`: the user's live sessions, newest first (id, created, last refresh, expires, IP, User-Agent). */
export async function sessionsList(args: Args, io: CliIO): Promise<void> {
  const email = emailOf(args, 'sessions list');
  await withAdmin(io, async (admin) => {
    const user = await userByEmail(admin, email);
    for (const s of await admin.userSessions(null, user.id)) {
      const times = [s.createdAt, s.lastRefreshedAt, s.expiresAt].map((t) => new Date(t).toISOString());
      io.stdout.write(`${s.id}\t${times.join('\t')}\t${s.ipAddress ?? '-'}\t${(s.userAgent ?? '-').replace(/[\t\r\n]/g, ' ')}\n`);
    }
  });
}

/** `sessions revoke --email E [--id S]`: one session, or every one; prints how many ended. */
export async function sessionsRevoke(args: Args, io: CliIO): Promise<void> {
  const email = emailOf(args, 'sessions revoke');
  await withAdmin(io, async (admin) => {
    const user = await userByEmail(admin, email);
    const count = args.id !== undefined
      ? Number(await admin.revokeUserSession(null, user.id, args.id, NO_ORIGIN))
      : await admin.revokeUserSessions(null, user.id, NO_ORIGIN);
    if (args.id !== undefined && count === 0) throw new CliError(`${user.email} has no live session ${args.id}`);
    io.stdout.write(`${count} session(s) ended\n`);
  });
}
