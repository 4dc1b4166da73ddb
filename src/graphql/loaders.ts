import DataLoader from 'dataloader';
import type { Clock } from '../clock.js';
import type { SessionRecord, SessionRef, Store, UserRecord } from '../store/types.js';

/** Per-request loaders: what resolvers read from the store in one tick goes out in one round trip. */
export interface Loaders {
  users: DataLoader<string, UserRecord | null>;
  sessions: DataLoader<SessionRef, SessionRecord | null, string>;
}

export function createLoaders(store: Store, clock: Clock): Loaders {
  return {
    users: new DataLoader((ids) => store.getUsers(ids)),
    sessions: new DataLoader((refs) => store.getSessions(refs, clock.now()), {
      cacheKeyFn: (ref) => `${ref.userId}:${ref.sessionId}`,
    }),
  };
}
