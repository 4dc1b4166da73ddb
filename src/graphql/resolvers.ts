import type { IssuedSession } from '../auth/authService.js';
import { unauthenticated } from '../errors.js';
import type { UserRecord } from '../store/types.js';
import { type GraphQLContext, requireUser } from './context.js';
import { DateTimeScalar } from './dateTimeScalar.js';
import type { Resolvers } from './generated/resolvers.js';
import type { AuthPayloadModel, UserModel } from './models.js';

function payload(issued: IssuedSession): AuthPayloadModel {
  return {
    accessToken: issued.access.token,
    tokenType: 'Bearer',
    expiresIn: issued.access.expiresIn,
    accessTokenExpiresAt: new Date(issued.access.expiresAt),
    refreshToken: issued.refreshToken,
    refreshTokenExpiresAt: new Date(issued.refreshTokenExpiresAt),
    user: { id: issued.user.id, record: issued.user },
    session: { ...issued.session, current: true },
  };
}

/** The stored user behind a UserModel, loaded through the request's batching loader. */
async function userRecord(parent: UserModel, context: GraphQLContext): Promise<UserRecord> {
  const record = parent.record ?? (await context.loaders.users.load(parent.id));
  if (!record) throw unauthenticated('SESSION_REVOKED');
  return record;
}

/** Thin resolvers: parse, call the AuthService, shape the answer. */
export const resolvers: Resolvers = {
  DateTime: DateTimeScalar,

  Query: {
    // `me { id }` is answered from the verified token alone: no store round trip.
    me: (_parent, _args, context) => ({ id: requireUser(context).id }),
    sessions: (_parent, _args, context) => context.auth.listSessions(requireUser(context).id),
  },

  Mutation: {
    signup: async (_parent, { email, password }, context) =>
      payload(await context.auth.signup(email, password, context.client)),
    login: async (_parent, { email, password }, context) =>
      payload(await context.auth.login(email, password, context.client)),
    refreshToken: async (_parent, { refreshToken }, context) => payload(await context.auth.refresh(refreshToken)),
    revokeSession: (_parent, { sessionId }, context) => {
      const user = requireUser(context);
      return context.auth.revokeSession({ userId: user.id, sessionId: sessionId ?? user.sessionId });
    },
    revokeAllSessions: (_parent, _args, context) => context.auth.revokeAllSessions(requireUser(context).id),
  },

  User: {
    id: (parent) => parent.id,
    email: async (parent, _args, context) => (await userRecord(parent, context)).email,
    roles: async (parent, _args, context) => (await userRecord(parent, context)).roles,
    createdAt: async (parent, _args, context) => new Date((await userRecord(parent, context)).createdAt),
  },

  Session: {
    createdAt: (session) => new Date(session.createdAt),
    lastRefreshedAt: (session) => new Date(session.lastRefreshedAt),
    expiresAt: (session) => new Date(session.expiresAt),
    current: (session, _args, context) => session.current ?? session.id === context.sessionId,
  },
};
