import { badUserInput, forbidden } from '../errors.js';
import { ID_PATTERN } from '../ids.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import { type EventPage, type EventPosition, type EventStore, isSecurityEventType, type SecurityEvent } from './types.js';

/** A page as GraphQL serves it (SecurityEventConnection): the cursor opaque. */
export interface SecurityEventPage {
  nodes: SecurityEvent[];
  endCursor: string | null;
  hasNextPage: boolean;
}

export interface PageArgs {
  first?: number | null;
  after?: string | null;
}

export interface AuditArgs extends PageArgs {
  userId?: string | null;
  type?: string | null;
}

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;
export const ADMIN_ROLE = 'admin';

/**
 * Reading security events (docs/contract.md section 10): a user's own (`securityEvents`), and
 * everyone's for admins (`auditEvents`). Appending is the stores' business, inside the steps
 * that make the changes; this service checks the arguments and who may read what.
 */
export class SecurityEventService {
  constructor(private readonly store: EventStore) {}

  /** The caller's own events, newest first. */
  async own(userId: string, args: PageArgs): Promise<SecurityEventPage> {
    return toPage(await this.store.userEvents(userId, page(args)));
  }

  /** Everyone's events (role `admin`), newest first; of one user, of one type. */
  async audit(caller: { roles: readonly string[] }, args: AuditArgs): Promise<SecurityEventPage> {
    if (!caller.roles.includes(ADMIN_ROLE)) throw forbidden('Only an admin can read the audit log.');
    const { type, userId } = args;
    if (type != null && !isSecurityEventType(type)) throw badUserInput(`Not a security event type: ${JSON.stringify(type.slice(0, 64))}.`);
    if (userId != null && !ID_PATTERN.test(userId)) throw badUserInput('Not a user id.');
    return toPage(
      await this.store.auditEvents({
        ...page(args),
        ...(userId != null ? { userId } : {}),
        ...(type != null ? { type } : {}),
      }),
    );
  }
}

function page(args: PageArgs): { first: number; after: EventPosition | null } {
  const first = args.first ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
    throw badUserInput(`first must be between 1 and ${MAX_PAGE_SIZE}.`);
  }
  if (args.after == null) return { first, after: null };
  const after = decodeCursor(args.after);
  if (!after) throw badUserInput('after is not a cursor of this list.');
  return { first, after };
}

function toPage(result: EventPage): SecurityEventPage {
  return {
    nodes: result.events.map((e) => e.event),
    endCursor: result.endCursor ? encodeCursor(result.endCursor) : null,
    hasNextPage: result.hasNextPage,
  };
}
