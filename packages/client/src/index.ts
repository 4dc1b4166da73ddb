export {
  type AuthClient,
  type AuthClientOptions,
  createAuthClient,
  type Session,
  type SessionEnded,
  type SessionEndReason,
  type SignedIn,
  type Transport,
} from './authClient.js';
export { type ChannelLike, type FetchLike, type LockManagerLike, MemoryStorage, type StorageLike, type TimersLike } from './environment.js';
export { type AccessTokenClaims, decodeAccessToken } from './jwt.js';
export { AuthClientError, type SessionInfo, type User } from './operations.js';
