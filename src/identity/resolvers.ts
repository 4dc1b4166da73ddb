import { payload } from '../graphql/authPayload.js';
import { type GraphQLContext, requireUser } from '../graphql/context.js';
import { clientOf } from '../graphql/eventOrigin.js';
import type { Resolvers } from '../graphql/generated/resolvers.js';
import { ErrorCode, TesseraError } from '../errors.js';
import type { IdentityService } from './identityService.js';

/** No providers configured: the fields answer as a gateway without the feature would. */
function service(context: GraphQLContext): IdentityService {
  if (context.identity) return context.identity;
  throw new TesseraError(ErrorCode.FORBIDDEN, 'No identity providers are configured.', { extra: { reason: 'FEATURE_DISABLED' } });
}

/** FRESH_AUTH_MAX_AGE's default (docs/contract.md section 7). */
const FRESH_AUTH_MAX_AGE_SECONDS = 300;

/**
 * Fresh auth (section 7): the caller proved a credential in this session within the last five
 * minutes. The access token's `auth_time` when it carries one; until then, the session's start
 * (a session is started by proving a credential).
 */
async function requireFresh(context: GraphQLContext, identity: IdentityService): Promise<void> {
  const user = requireUser(context);
  const claimed = (user.claims as { auth_time?: unknown }).auth_time;
  let authTime = typeof claimed === 'number' ? claimed : null;
  if (authTime === null) {
    const session = await context.loaders.sessions.load({ userId: user.id, sessionId: user.sessionId });
    authTime = session ? Math.floor(session.createdAt / 1000) : 0;
  }
  const now = Math.floor(identity.now() / 1000);
  if (now - authTime > FRESH_AUTH_MAX_AGE_SECONDS) {
    throw new TesseraError(ErrorCode.FORBIDDEN, 'This needs a recent sign-in.', {
      extra: { reason: 'STEP_UP_REQUIRED', maxAge: FRESH_AUTH_MAX_AGE_SECONDS },
    });
  }
}

/**
 * The resolvers of schema/identity.graphql, thin: the caller, then the IdentityService
 * (context.identity). Merged into the schema's resolvers (and their error boundary) in
 * src/graphql/resolvers.ts.
 */
export const identityResolvers = {
  Query: {
    identities: (_parent, _args, context) => service(context).listIdentities(requireUser(context).id),
  },
  Mutation: {
    exchangeLoginCode: async (_parent, { code }, context) =>
      payload(await service(context).exchangeLoginCode(code, clientOf(context)), context),
    unlinkIdentity: async (_parent, { id }, context) => {
      const identity = service(context);
      await requireFresh(context, identity);
      return identity.unlink(requireUser(context).id, id, clientOf(context));
    },
    startIdentityLink: async (_parent, { provider, redirectUri }, context) => {
      const identity = service(context);
      await requireFresh(context, identity);
      return identity.startLink(requireUser(context).id, provider, redirectUri);
    },
  },
  Identity: {
    linkedAt: (identity) => new Date(identity.linkedAt),
  },
} satisfies Pick<Resolvers, 'Query' | 'Mutation' | 'Identity'>;
