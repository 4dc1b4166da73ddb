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
