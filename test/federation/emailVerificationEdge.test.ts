import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer } from '../helpers/testServer.js';
import { contextHeader, type FederatedSetup, signup, startFederated } from './support.js';

/*
 * EMAIL_VERIFICATION=required in gateway mode (docs/contract.md section 7, "at the edge as well"):
 * an unverified caller's fields of other subgraphs are FORBIDDEN EMAIL_NOT_VERIFIED before any
 * subgraph is called; `me` and the account fields still work; the rest of the operation runs.
 */
describe('EMAIL_VERIFICATION=required at the edge', () => {
  let setup: FederatedSetup;
  beforeAll(async () => {
    setup = await startFederated({ env: { EMAIL_VERIFICATION: 'required', MAIL_TRANSPORT: 'log' } });
  });
  afterAll(async () => setup.close());

  it('an unverified caller: other subgraphs are not called, their fields are FORBIDDEN EMAIL_NOT_VERIFIED, me still answers', async () => {
    const { gateway, orders } = setup;
    const user = await signup(gateway);
    orders.requests.length = 0;
    expect((await gateway.graphql('{ me { id email } }', {}, bearer(user.accessToken))).data).toEqual({ me: { id: user.user.id, email: user.user.email } });
    // orders is non-null: its denial nulls me (GraphQL's null propagation), as any error there would.
    const nested = await gateway.graphql('{ me { id orders { id } } }', {}, bearer(user.accessToken));
    expect(nested.data).toEqual({ me: null });
    expect(nested.errors.map((e) => [e.path?.join('.'), e.extensions.code, e.extensions.reason])).toEqual([['me.orders', 'FORBIDDEN', 'EMAIL_NOT_VERIFIED']]);
    const root = await gateway.graphql('{ orderStatuses }', {}, bearer(user.accessToken));
    expect(root.errors.map((e) => [e.path?.join('.'), e.extensions.code, e.extensions.reason])).toEqual([['orderStatuses', 'FORBIDDEN', 'EMAIL_NOT_VERIFIED']]);
    expect(orders.requests.filter((h) => contextHeader(h) !== undefined)).toEqual([]);
    // Auth-schema fields beyond the allowed ones are refused by the auth subgraph too.
    const events = await gateway.graphql('{ securityEvents { nodes { type } } }', {}, bearer(user.accessToken));
    expect(events.errors[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', reason: 'EMAIL_NOT_VERIFIED' });
  });

  it('a verified caller (a token that says so) reaches the subgraph', async () => {
    const { gateway } = setup;
    const user = await signup(gateway);
    const [record] = await gateway.store.getUsers([user.user.id]);
    expect(record?.emailVerified).toBe(false);
    // The verification link's token comes from the log transport's line for this address.
    const line = gateway.logs.find((l) => l.includes('email_verification') && l.includes(user.user.email));
    const token = /token=([A-Za-z0-9._-]+)/.exec(line ?? '')?.[1];
    expect(token).toBeDefined();
    expect((await gateway.graphql('mutation($t: String!) { verifyEmail(token: $t) { emailVerified } }', { t: token })).data).toEqual({ verifyEmail: { emailVerified: true } });
    const refreshed = await gateway.graphql('mutation($t: String) { refreshToken(refreshToken: $t) { accessToken } }', { t: user.refreshToken });
    const answer = await gateway.graphql('{ me { orders { id } } orderStatuses }', {}, bearer(refreshed.data!.refreshToken.accessToken));
    expect(answer.errors).toEqual([]);
    expect(answer.data!.orderStatuses).toEqual(['PLACED', 'SHIPPED', 'DELIVERED']);
  });
});
