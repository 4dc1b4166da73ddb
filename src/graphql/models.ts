import type { SecurityEventPage } from '../events/eventService.js';
import type { SecurityEvent } from '../events/types.js';
import type { FactorRecord } from '../factors/store.js';
import type { SessionRecord, UserRecord } from '../store/types.js';

/** What resolvers pass around for a User: the id always, the record once loaded. */
export interface UserModel {
  id: string;
  record?: UserRecord;
}

/** A session; `current` is set where the answer itself decides it (the session a login just started). */
export type SessionModel = SessionRecord & { current?: boolean };

export interface AuthPayloadModel {
  accessToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  accessTokenExpiresAt: Date;
  refreshToken: string | null;
  refreshTokenExpiresAt: Date;
  user: UserModel;
  session: SessionModel;
}

/** A security event as the events service hands it out. */
export type SecurityEventModel = SecurityEvent;

/** A page of them, its cursor already opaque. */
export type SecurityEventConnectionModel = SecurityEventPage;

/** A second factor as the factor service hands it out. */
export type FactorModel = FactorRecord;

/** A page of users (admin `users`). */
export interface UserConnectionModel {
  nodes: UserModel[];
  endCursor: string | null;
  hasNextPage: boolean;
}
/** A session event pushed to a `sessionEvents` subscription (src/realtime). */
export type { SessionEventModel } from '../realtime/types.js';
