import type { ClientInfo } from '../auth/authService.js';
import type { Clock } from '../clock.js';
import { badUserInput, forbidden, TesseraError, ErrorCode } from '../errors.js';
import { type Metrics, noMetrics } from '../observability/metrics.js';
import type { RevocationFeed } from '../revocation/revocationFeed.js';
import type { SessionRecord, Store, UserRecord } from '../store/types.js';
import { forgetAccountCounters } from './counters.js';
import type { UserPage } from './store.js';

/** The role that may administer accounts. */
export const ADMIN_ROLE = 'admin';

export const USERS_PAGE_MAX = 100;

/** Who is asking for an administrative change. */
export interface AdminCaller {
  id: string;
  roles: readonly string[];
}

export interface AdminServiceDeps {
  store: Store;
  clock: Clock;
  /** This instance's revocation feed (the CLI has none: the store's steps push to every gateway). */
  revocations: Pick<RevocationFeed, 'noteRevoked'>;
  metrics?: Metrics;
}

/** A role name: what a token's space-separated `scope` can carry. */
const ROLE = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * Administration (docs/contract.md section 7), for callers with the role `admin` (else
 * FORBIDDEN): read users and their sessions, disable and enable, set roles, end sessions, delete.
 * The same verbs serve the CLI (no caller: the operator). An admin cannot disable, delete or
 * demote their own account while it is the last enabled admin.
 */
export class AdminService {
  private readonly metrics: Metrics;

  constructor(private readonly deps: AdminServiceDeps) {
    this.metrics = deps.metrics ?? noMetrics;
  }

  /** FORBIDDEN unless the caller has the role `admin` (null: the operator at the CLI). */
  requireAdmin(caller: AdminCaller | null): void {
    if (caller !== null && !caller.roles.includes(ADMIN_ROLE)) throw forbidden('This needs the role admin.');
  }

  async user(caller: AdminCaller | null, id: string): Promise<UserRecord | null> {
    this.requireAdmin(caller);
    const [user] = await this.deps.store.getUsers([id]);
    return user ?? null;
  }

  async findByEmail(caller: AdminCaller | null, email: string): Promise<UserRecord | null> {
    this.requireAdmin(caller);
    return this.deps.store.findUserByEmail(email);
  }

  async users(caller: AdminCaller | null, query: { first: number; after: string | null; emailPrefix: string | null }): Promise<UserPage> {
    this.requireAdmin(caller);
    if (!(Number.isInteger(query.first) && query.first >= 1 && query.first <= USERS_PAGE_MAX)) {
      throw badUserInput(`first must be 1 to ${USERS_PAGE_MAX}.`);
    }
    if (query.after !== null && !/^[A-Za-z0-9_-]{1,1400}$/.test(query.after)) throw badUserInput('Not a cursor of this list.');
    const emailPrefix = query.emailPrefix?.trim().normalize('NFC').toLowerCase() || null;
    return this.deps.store.listUsers({ ...query, emailPrefix });
  }

  async userSessions(caller: AdminCaller | null, id: string): Promise<SessionRecord[]> {
    this.requireAdmin(caller);
    const sessions = await this.deps.store.listSessions(id, this.deps.clock.now());
    return sessions.sort((a, b) => b.createdAt - a.createdAt || b.id.localeCompare(a.id));
  }

  async disableUser(caller: AdminCaller | null, id: string, client: ClientInfo): Promise<UserRecord> {
    this.requireAdmin(caller);
    if (caller?.id === id) await this.guardLastAdmin(id);
    const changed = await this.deps.store.setUserDisabled(id, true, this.deps.clock.now(), client);
    if (!changed) throw notFound();
    this.ended(changed.revokedSessionIds, 'disabled');
    return changed.user;
  }

  async enableUser(caller: AdminCaller | null, id: string, client: ClientInfo): Promise<UserRecord> {
    this.requireAdmin(caller);
    const changed = await this.deps.store.setUserDisabled(id, false, this.deps.clock.now(), client);
    if (!changed) throw notFound();
    return changed.user;
  }

  /** The roles a refresh of the user's sessions carries from now on. */
  async setUserRoles(caller: AdminCaller | null, id: string, roles: readonly string[], client: ClientInfo): Promise<UserRecord> {
    this.requireAdmin(caller);
    const unique = [...new Set(roles.map((role) => role.trim()))];
    if (unique.length > 32 || unique.some((role) => !ROLE.test(role))) {
      throw badUserInput('Roles are 1 to 64 letters, digits or _ . : - each, at most 32.');
    }
    if (caller?.id === id && !unique.includes(ADMIN_ROLE)) await this.guardLastAdmin(id);
    const user = await this.deps.store.setUserRoles(id, unique, this.deps.clock.now(), client);
    if (!user) throw notFound();
    return user;
  }

  async revokeUserSessions(caller: AdminCaller | null, id: string, client: ClientInfo): Promise<number> {
    this.requireAdmin(caller);
    const ids = await this.deps.store.revokeAllSessions(id, this.deps.clock.now(), { origin: client, cause: 'admin' });
    this.ended(ids, 'admin');
    return ids.length;
  }

  /** One session of the user (the CLI's `sessions revoke --id`); false when it is not theirs or ended. */
  async revokeUserSession(caller: AdminCaller | null, id: string, sessionId: string, client: ClientInfo): Promise<boolean> {
    this.requireAdmin(caller);
    const revoked = await this.deps.store.revokeSession({ userId: id, sessionId }, this.deps.clock.now(), { origin: client, cause: 'admin' });
    if (revoked) this.ended([sessionId], 'admin');
    return revoked;
  }

  async deleteUser(caller: AdminCaller | null, id: string, client: ClientInfo): Promise<boolean> {
    this.requireAdmin(caller);
    if (caller?.id === id) await this.guardLastAdmin(id);
    const deleted = await this.deps.store.deleteUser(id, this.deps.clock.now(), client);
    if (!deleted) return false;
    this.ended(deleted.revokedSessionIds, 'deleted');
    await forgetAccountCounters(this.deps.store, deleted.email);
    return true;
  }

  /**
   * Refuses (FORBIDDEN, a clear message) when `userId` is an enabled admin and no other enabled
   * admin exists. Walks the users index a page at a time: rare (an admin acting on their own
   * account), and never a scan of the keyspace.
   */
  async guardLastAdmin(userId: string): Promise<void> {
    const [self] = await this.deps.store.getUsers([userId]);
    if (!self || self.disabled || !self.roles.includes(ADMIN_ROLE)) return;
    let after: string | null = null;
    for (;;) {
      const page = await this.deps.store.listUsers({ first: USERS_PAGE_MAX, after, emailPrefix: null });
      if (page.users.some((u) => u.id !== userId && !u.disabled && u.roles.includes(ADMIN_ROLE))) return;
      if (!page.hasNextPage || page.endCursor === null) break;
      after = page.endCursor;
    }
    throw new TesseraError(
      ErrorCode.FORBIDDEN,
      'This is the last enabled admin account: make another user admin first, then disable, delete or demote this one.',
    );
  }

  private ended(ids: readonly string[], cause: 'disabled' | 'deleted' | 'admin'): void {
    this.deps.revocations.noteRevoked(ids);
    if (ids.length > 0) this.metrics.sessionsRevoked(cause, ids.length);
  }
}

function notFound(): TesseraError {
  return badUserInput('No user has this id.');
}
