import type { ClientInfo } from '../auth/authService.js';
import { requireFreshAuth } from './freshAuth.js';
import { type AuthenticatedUser, type GraphQLContext, requireUser } from '../graphql/context.js';
import { clientOf } from '../graphql/eventOrigin.js';
import type { Resolvers } from '../graphql/generated/resolvers.js';
import type { AuthPayloadModel, UserModel } from '../graphql/models.js';
import type { UserRecord } from '../store/types.js';
import type { IssuedSession } from '../auth/authService.js';

/**
 * The resolvers of schema/accounts.graphql, thin: the caller, then AccountService
 * (context.accounts) or AdminService (context.admin). Merged into the schema's resolvers (and
 * their error boundary) in src/graphql/resolvers.ts, which shapes token answers (`payload`).
 */

const model = (user: UserRecord): UserModel => ({ id: user.id, record: user });

function caller(context: GraphQLContext): AuthenticatedUser {
  return requireUser(context);
}

function admin(context: GraphQLContext): { id: string; roles: readonly string[] } {
  const user = requireUser(context);
  return { id: user.id, roles: user.roles };
}

/** Root fields an unverified user may use under EMAIL_VERIFICATION=required (docs/contract.md section 7). */
export const UNVERIFIED_ALLOWED_FIELDS: ReadonlySet<string> = new Set([
  'Query.me',
  'Query.sessions',
  'Mutation.signup',
  'Mutation.login',
  'Mutation.refreshToken',
  'Mutation.revokeSession',
  'Mutation.revokeAllSessions',
  'Mutation.requestPasswordReset',
  'Mutation.resetPassword',
  'Mutation.requestEmailVerification',
  'Mutation.verifyEmail',
  'Mutation.reauthenticate',
  'Mutation.changePassword',
  'Mutation.requestEmailChange',
  'Mutation.confirmEmailChange',
  'Mutation.deleteAccount',
  // A sign-in with another provider ends like login (src/identity/).
  'Mutation.exchangeLoginCode',
]);

export function accountResolvers(payload: (issued: IssuedSession, context: GraphQLContext) => AuthPayloadModel) {
  const client = (context: GraphQLContext): ClientInfo => clientOf(context);
  return {
    Query: {
      user: async (_parent, { id }, context) => {
        const user = await context.admin.user(admin(context), id);
        return user ? model(user) : null;
      },
      users: async (_parent, { first, after, emailPrefix }, context) => {
        const page = await context.admin.users(admin(context), { first: first ?? 50, after: after ?? null, emailPrefix: emailPrefix ?? null });
        return { nodes: page.users.map(model), endCursor: page.endCursor, hasNextPage: page.hasNextPage };
      },
      userSessions: (_parent, { id }, context) => context.admin.userSessions(admin(context), id),
    },
    Mutation: {
      requestPasswordReset: (_parent, { email }, context) => context.accounts.requestPasswordReset(email, client(context)),
      resetPassword: async (_parent, { token, newPassword }, context) =>
        payload(await context.accounts.resetPassword(token, newPassword, client(context)), context),
      requestEmailVerification: (_parent, _args, context) => context.accounts.requestEmailVerification(caller(context), client(context)),
      verifyEmail: async (_parent, { token }, context) => model(await context.accounts.verifyEmail(token, client(context))),
      reauthenticate: async (_parent, { password, code, passkeyResponse }, context) => {
        const who = caller(context);
        const proof = { code: code ?? null, passkeyResponse: passkeyResponse ?? null };
        const proveFactor = (origin: ReturnType<typeof client>) => context.factors.proveAgain(who, proof, origin);
        return payload(await context.accounts.reauthenticate(who, password ?? null, client(context), proveFactor), context);
      },
      changePassword: (_parent, { newPassword }, context) => context.accounts.changePassword(caller(context), newPassword, client(context)),
      requestEmailChange: (_parent, { newEmail }, context) => context.accounts.requestEmailChange(caller(context), newEmail, client(context)),
      confirmEmailChange: async (_parent, { token }, context) => model(await context.accounts.confirmEmailChange(token, client(context))),
      deleteAccount: async (_parent, _args, context) => {
        const user = requireFreshAuth(context);
        const deleted = await context.accounts.deleteAccount(user, client(context), (id) => context.admin.guardLastAdmin(id));
        if (context.refreshTransport !== 'body') context.cookies.clear();
        return deleted;
      },
      disableUser: async (_parent, { id }, context) => model(await context.admin.disableUser(admin(context), id, client(context))),
      enableUser: async (_parent, { id }, context) => model(await context.admin.enableUser(admin(context), id, client(context))),
      setUserRoles: async (_parent, { id, roles }, context) => model(await context.admin.setUserRoles(admin(context), id, roles, client(context))),
      revokeUserSessions: (_parent, { id }, context) => context.admin.revokeUserSessions(admin(context), id, client(context)),
      deleteUser: (_parent, { id }, context) => context.admin.deleteUser(admin(context), id, client(context)),
    },
  } satisfies Pick<Resolvers, 'Query' | 'Mutation'>;
}
