import type { IssuedSession } from '../auth/authService.js';
import type { GraphQLContext } from './context.js';
import type { AuthPayloadModel } from './models.js';

/** Shapes a new token pair; in cookie transport the refresh token goes into the cookie instead of (or as well as) the body. */
export function payload(issued: IssuedSession, context: GraphQLContext): AuthPayloadModel {
  const { refreshTransport } = context;
  if (refreshTransport !== 'body') {
    context.cookies.setRefresh(issued.refreshToken, issued.refreshTokenExpiresAt, issued.session.lastRefreshedAt);
  }
  return {
    accessToken: issued.access.token,
    tokenType: 'Bearer',
    expiresIn: issued.access.expiresIn,
    accessTokenExpiresAt: new Date(issued.access.expiresAt),
    refreshToken: refreshTransport === 'cookie' ? null : issued.refreshToken,
    refreshTokenExpiresAt: new Date(issued.refreshTokenExpiresAt),
    user: { id: issued.user.id, record: issued.user },
    session: { ...issued.session, current: true },
  };
}

