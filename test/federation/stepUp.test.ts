import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { enrollTotp, totpAt, VERIFY } from '../factors/support.js';
import { bearer, createTestServer, LOGIN, REFRESH, type TestServer } from '../helpers/testServer.js';
import { ISSUER, PASSWORD, signup } from './support.js';

/*
 * `@tessera__fresh` through the gateway (docs/contract.md section 8): a subgraph of the test's own
 * declares it as the contract says (`@link` … `as: "tessera"`, `@composeDirective`), marks fields
 * and a type with it, and records what it is asked to resolve. The gateway composes it by
 * introspection, as in development.
 */
const BANK = `
extend schema
  @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key", "@composeDirective"])
  @link(url: "https://tessera.dev/step-up/v0.1", as: "tessera")
  @composeDirective(name: "@tessera__fresh")

directive @tessera__fresh(maxAge: Int!, mfa: Boolean = false) on FIELD_DEFINITION | OBJECT

type Query {
  rates: String
  balance: Int @tessera__fresh(maxAge: 300)
  vault: Vault
}

type Vault @tessera__fresh(maxAge: 600, mfa: true) {
  code: String
}
`;

const STEP = 30_000;
const resolved: string[] = [];

async function startBank() {
  const server = new ApolloServer({
    schema: buildSubgraphSchema({
      typeDefs: parse(BANK),
      resolvers: {
        Query: {
          rates: () => (resolved.push('rates'), '1.05'),
          balance: () => (resolved.push('balance'), 42),
          vault: () => (resolved.push('vault'), { code: '0000' }),
        },
      },
    }),
    plugins: [ApolloServerPluginInlineTraceDisabled()],
  });
  const { url } = await startStandaloneServer(server, { listen: { port: 0, host: '127.0.0.1' } });
  return { url, stop: () => server.stop() };
}

const QUERY = `{ rates balance vault { code } }`;

describe('@tessera__fresh at the edge', () => {
  const clock = new ManualClock(Math.floor(Date.now() / STEP) * STEP + 1_000);
  let bank: Awaited<ReturnType<typeof startBank>>;
  let gateway: TestServer;

  beforeAll(async () => {
    bank = await startBank();
    gateway = await createTestServer({
      store: 'memory',
      clock,
      env: { AUTH_ISSUER: ISSUER, SUBGRAPHS: `bank=${bank.url}`, LOG_LEVEL: 'warn' },
    });
  });
  afterAll(async () => {
    await gateway?.close();
    await bank?.stop();
  });

  async function ask(token?: string) {
    resolved.length = 0;
    return gateway.graphql(QUERY, {}, token ? bearer(token) : {});
  }

  const stepUp = (path: string, maxAge: number, mfa: boolean) =>
    expect.objectContaining({ path: [path], extensions: expect.objectContaining({ code: 'FORBIDDEN', reason: 'STEP_UP_REQUIRED', maxAge, mfa }) });

  it('serves a field of the right age, and refuses one that needs MFA to a password sign-in', async () => {
    const { accessToken } = await signup(gateway);
    const answer = await ask(accessToken);
    expect(answer.data).toEqual({ rates: '1.05', balance: 42, vault: null });
    expect(answer.errors).toEqual([stepUp('vault', 600, true)]);
    // The subgraph was never asked for the refused field.
    expect(resolved.sort()).toEqual(['balance', 'rates']);
  });

  it('refuses a field whose sign-in is older than maxAge (no tolerance), and the rest still runs; a refresh keeps auth_time', async () => {
    const { accessToken, refreshToken } = await signup(gateway);
    clock.advance(300_000);
    expect((await ask(accessToken)).data!.balance).toBe(42);
    clock.advance(1_000);
    const stale = await ask(accessToken);
    expect(stale.data).toEqual({ rates: '1.05', balance: null, vault: null });
    expect(stale.errors).toEqual(expect.arrayContaining([stepUp('balance', 300, false), stepUp('vault', 600, true)]));
    expect(resolved).toEqual(['rates']);
    const refreshed = await gateway.graphql(REFRESH, { t: refreshToken });
    expect(refreshed.errors).toEqual([]);
    const still = await ask(refreshed.data!.refreshToken.accessToken);
    expect(still.data!.balance).toBeNull();
    // Signing in again is a new auth_time.
    const login = await gateway.graphql(LOGIN, { email: refreshed.data!.refreshToken.user.email, password: PASSWORD });
    expect((await ask(login.data!.login.accessToken)).data!.balance).toBe(42);
  });

  it('serves mfa: true to a sign-in with a second factor (acr aal2), until it is too old', async () => {
    const { accessToken, user } = await signup(gateway);
    const { secret } = await enrollTotp(gateway, accessToken, clock.now());
    const login = await gateway.graphql(LOGIN, { email: user.email, password: PASSWORD });
    const { mfaToken } = login.errors[0]!.extensions as { mfaToken: string };
    clock.advance(STEP);
    const verified = await gateway.graphql(VERIFY, { t: mfaToken, code: totpAt(secret, clock.now()) });
    expect(verified.errors).toEqual([]);
    const token = verified.data!.verifyMfa.accessToken as string;
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
    expect(claims).toMatchObject({ amr: ['pwd', 'otp', 'mfa'], acr: 'aal2', auth_time: Math.floor(clock.now() / 1000) });
    const answer = await ask(token);
    expect(answer.errors).toEqual([]);
    expect(answer.data).toEqual({ rates: '1.05', balance: 42, vault: { code: '0000' } });
    clock.advance(601_000);
    const stale = await ask(token);
    expect(stale.data).toEqual({ rates: '1.05', balance: null, vault: null });
  });

  it('answers UNAUTHENTICATED to nobody, as @authenticated would', async () => {
    const answer = await ask();
    expect(answer.data).toEqual({ rates: '1.05', balance: null, vault: null });
    expect(answer.errors.map((e) => [e.path, e.extensions.code, e.extensions.reason])).toEqual([
      [['balance'], 'UNAUTHENTICATED', 'TOKEN_MISSING'],
      [['vault'], 'UNAUTHENTICATED', 'TOKEN_MISSING'],
    ]);
  });
});
