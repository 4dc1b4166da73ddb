import { accountResolvers, UNVERIFIED_ALLOWED_FIELDS } from '../accounts/resolvers.js';
import { forbiddenBecause, unauthenticated } from '../errors.js';
import { eventResolvers } from '../events/resolvers.js';
import { factorResolvers } from '../factors/resolvers.js';
import { identityResolvers } from '../identity/resolvers.js';
import { realtimeResolvers } from '../realtime/resolvers.js';
import type { UserRecord } from '../store/types.js';
import { type GraphQLContext, requireUser } from './context.js';
import { DateTimeScalar } from './dateTimeScalar.js';
import { withGraphQLErrors } from './errorBoundary.js';
import { clientOf } from './eventOrigin.js';
import type { Resolvers } from './generated/resolvers.js';
import { JSONScalar } from './jsonScalar.js';
import { payload } from './authPayload.js';
import type { UserModel } from './models.js';

function clearCookie(context: GraphQLContext): void {
  if (context.refreshTransport !== 'body') context.cookies.clear();
}

/** The stored user behind a UserModel, loaded through the request's batching loader. */
async function userRecord(parent: UserModel, context: GraphQLContext): Promise<UserRecord> {
  const record = parent.record ?? (await context.loaders.users.load(parent.id));
  if (!record) throw unauthenticated('SESSION_REVOKED');
  return record;
}

/** No id: the caller's current session; with no valid access token, the session of the refresh cookie. */
async function revokeSession(sessionId: string | null | undefined, context: GraphQLContext): Promise<boolean> {
  if (!context.user && !sessionId && context.refreshCookie) {
    clearCookie(context);
    return context.auth.revokeSessionWithRefreshToken(context.refreshCookie, clientOf(context));
  }
  const user = requireUser(context);
  const target = sessionId ?? user.sessionId;
  if (target === user.sessionId) clearCookie(context);
  return context.auth.revokeSession({ userId: user.id, sessionId: target }, clientOf(context));
}

const accounts = accountResolvers(payload);

type RootResolvers = Record<string, (parent: unknown, args: unknown, context: GraphQLContext, info: unknown) => unknown>;

/**
 * EMAIL_VERIFICATION=required (docs/contract.md section 7): a signed-in caller whose access token
 * does not say `email_verified: true` may use only the root fields of UNVERIFIED_ALLOWED_FIELDS;
 * every other is FORBIDDEN reason EMAIL_NOT_VERIFIED. (Gateway mode checks the other subgraphs'
 * fields at the edge: federation/authorizingGateway.ts.) Anonymous callers are left to each field.
 */
function gateUnverified<T extends object>(type: 'Query' | 'Mutation', fields: T): T {
  const gated: RootResolvers = {};
  for (const [name, resolve] of Object.entries(fields as RootResolvers)) {
    if (UNVERIFIED_ALLOWED_FIELDS.has(`${type}.${name}`)) {
      gated[name] = resolve;
      continue;
    }
    gated[name] = (parent, args, context, info) => {
      if (context.user && context.accounts.settings.emailVerification === 'required' && context.user.claims.email_verified !== true) {
        throw forbiddenBecause('EMAIL_NOT_VERIFIED');
      }
      return resolve(parent, args, context, info);
    };
  }
  return gated as T;
}

/**
 * Thin resolvers: parse, call the AuthService, shape the answer. The errors they throw are
 * domain errors, turned into GraphQL errors on the way out (errorBoundary.ts).
 */
export const resolvers: Resolvers = withGraphQLErrors<Resolvers>({
  DateTime: DateTimeScalar,
  JSON: JSONScalar,

  Query: gateUnverified('Query', {
    // `me { id }` is answered from the verified token alone: no store round trip.
    me: (_parent, _args, context) => ({ id: requireUser(context).id }),
    sessions: (_parent, _args, context) => context.auth.listSessions(requireUser(context).id),
    ...eventResolvers.Query,
    ...identityResolvers.Query,
    ...accounts.Query,
    ...factorResolvers.Query,
  } satisfies Resolvers['Query']),

  Mutation: gateUnverified('Mutation', {
    signup: async (_parent, { email, password }, context) =>
      payload(await context.auth.signup(email, password, clientOf(context)), context),
    login: async (_parent, { email, password }, context) =>
      payload(await context.auth.login(email, password, clientOf(context)), context),
    refreshToken: async (_parent, { refreshToken }, context) =>
      payload(await context.auth.refresh(refreshToken ?? context.refreshCookie, clientOf(context)), context),
    revokeSession: (_parent, { sessionId }, context) => revokeSession(sessionId, context),
    revokeAllSessions: async (_parent, _args, context) => {
      const count = await context.auth.revokeAllSessions(requireUser(context).id, clientOf(context));
      clearCookie(context);
      return count;
    },
    ...identityResolvers.Mutation,
    ...accounts.Mutation,
    ...factorResolvers.Mutation,
    verifyMfa: async (_parent, { mfaToken, code }, context) =>
      payload(await context.factors.verifyMfa(mfaToken, code, clientOf(context)), context),
    finishPasskeyChallenge: async (_parent, { mfaToken, response }, context) =>
      payload(await context.factors.finishPasskeyChallenge(mfaToken, response, clientOf(context)), context),
  } satisfies Resolvers['Mutation']),

  User: {
    id: (parent) => parent.id,
    email: async (parent, _args, context) => (await userRecord(parent, context)).email,
    roles: async (parent, _args, context) => (await userRecord(parent, context)).roles,
    createdAt: async (parent, _args, context) => new Date((await userRecord(parent, context)).createdAt),
    emailVerified: async (parent, _args, context) => (await userRecord(parent, context)).emailVerified,
    disabled: async (parent, _args, context) => (await userRecord(parent, context)).disabled,
    hasPassword: async (parent, _args, context) => (await userRecord(parent, context)).passwordHash !== null,
  },

  Session: {
    createdAt: (session) => new Date(session.createdAt),
    lastRefreshedAt: (session) => new Date(session.lastRefreshedAt),
    expiresAt: (session) => new Date(session.expiresAt),
    current: (session, _args, context) => session.current ?? session.id === context.sessionId,
  },

  SecurityEvent: eventResolvers.SecurityEvent,
  Factor: factorResolvers.Factor,
  Identity: identityResolvers.Identity,
  ...realtimeResolvers,
});
