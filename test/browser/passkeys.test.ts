import { createHash } from 'node:crypto';
import type { CDPSession, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, serveStatic, type StaticServer, type TestBrowser } from '../helpers/browser.js';
import { AUTH_FIELDS, bearer, createTestServer, LOGIN, signUp, TEST_PASSWORD, type TestServer } from '../helpers/testServer.js';
import { failure } from '../factors/support.js';

/*
 * Passkeys in real Chromium (docs/contract.md section 8): a virtual authenticator through the
 * DevTools protocol (resident keys, user verification) answers the page's
 * navigator.credentials.create/get, with the options the gateway handed out. The page is on
 * http://localhost:<port> (a secure context); the test talks to the gateway over HTTP itself and
 * uses the browser for the ceremonies only, as an app would.
 */

const START_REGISTRATION = `mutation { startPasskeyRegistration }`;
const FINISH_REGISTRATION = `mutation($r: JSON!, $n: String) { finishPasskeyRegistration(response: $r, name: $n) { id kind name createdAt lastUsedAt } }`;
const START_CHALLENGE = `mutation($t: String) { startPasskeyChallenge(mfaToken: $t) }`;
const FINISH_CHALLENGE = `mutation($t: String, $r: JSON!) { finishPasskeyChallenge(mfaToken: $t, response: $r) { ${AUTH_FIELDS} } }`;

type Json = Record<string, any>;

let browser: TestBrowser;
let site: StaticServer;
let otherSite: StaticServer;
let gateway: TestServer;
let page: Page;
let cdp: CDPSession;
let origin: string;
/** The page's virtual authenticator. */
let authenticatorId: string;

beforeAll(async () => {
  site = await serveStatic({ files: { '/index.html': '<!doctype html><title>passkeys</title><p>passkeys</p>' } });
  otherSite = await serveStatic({ files: { '/index.html': '<!doctype html><title>elsewhere</title>' } });
  origin = `http://localhost:${site.port}`;
  gateway = await createTestServer({ store: 'redis', env: { WEBAUTHN_RP_ID: 'localhost', WEBAUTHN_ORIGINS: origin } });
  browser = await launchBrowser();
  const context = await browser.newContext();
  page = await context.newPage();
  await page.goto(`${origin}/`);
  cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  }));
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await gateway?.close();
  await site?.close();
  await otherSite?.close();
});

/** The page's WebAuthn API, typed here (the tests' TypeScript has no DOM library). */
interface PageWebAuthn {
  navigator: { credentials: Record<'create' | 'get', (options: { publicKey: unknown }) => Promise<{ toJSON(): Record<string, unknown> }>> };
  PublicKeyCredential: Record<'parseCreationOptionsFromJSON' | 'parseRequestOptionsFromJSON', (json: unknown) => unknown>;
}

/** navigator.credentials.create with the gateway's options, in the page; the credential's JSON. */
function create(options: unknown): Promise<Json> {
  return page.evaluate(async (o) => {
    const w = globalThis as unknown as PageWebAuthn;
    const credential = await w.navigator.credentials.create({ publicKey: w.PublicKeyCredential.parseCreationOptionsFromJSON(o) });
    return credential.toJSON();
  }, options);
}

/** navigator.credentials.get with the gateway's options, in the page; the assertion's JSON. */
function get(options: unknown, on: Page = page): Promise<Json> {
  return on.evaluate(async (o) => {
    const w = globalThis as unknown as PageWebAuthn;
    const credential = await w.navigator.credentials.get({ publicKey: w.PublicKeyCredential.parseRequestOptionsFromJSON(o) });
    return credential.toJSON();
  }, options);
}

const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Json;

/** A new account with a passkey, the only credential in the authenticator (so a passwordless get() has one to pick). */
async function registered() {
  await cdp.send('WebAuthn.clearCredentials', { authenticatorId });
  const account = await signUp(gateway);
  const started = await gateway.graphql(START_REGISTRATION, {}, bearer(account.accessToken));
  expect(started.errors).toEqual([]);
  const options = started.data!.startPasskeyRegistration as Json;
  expect(options).toMatchObject({
    rp: { id: 'localhost' },
    user: { name: account.user.email },
    authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
  });
  const response = await create(options);
  const finished = await gateway.graphql(FINISH_REGISTRATION, { r: response, n: 'laptop' }, bearer(account.accessToken));
  expect(finished.errors).toEqual([]);
  return { ...account, factor: finished.data!.finishPasskeyRegistration as Json, response };
}

async function passwordlessOptions(): Promise<Json> {
  const started = await gateway.graphql(START_CHALLENGE, {});
  expect(started.errors).toEqual([]);
  return started.data!.startPasskeyChallenge as Json;
}

async function mfaToken(email: string): Promise<string> {
  const login = await gateway.graphql(LOGIN, { email, password: TEST_PASSWORD });
  expect(failure(login)).toEqual({ code: 'UNAUTHENTICATED', reason: 'MFA_REQUIRED' });
  expect(login.errors[0]!.extensions.factors).toEqual(['passkey']);
  return login.errors[0]!.extensions.mfaToken as string;
}

describe('passkeys in Chromium', () => {
  it('registers a passkey, listed as a factor; the same credential cannot be registered twice', async () => {
    const { accessToken, factor, response } = await registered();
    expect(factor).toMatchObject({ kind: 'passkey', name: 'laptop', lastUsedAt: null });
    const listed = await gateway.graphql('{ factors { id kind name } }', {}, bearer(accessToken));
    expect(listed.data!.factors).toEqual([{ id: factor.id, kind: 'passkey', name: 'laptop' }]);
    // The same response again: its challenge is spent.
    const again = await gateway.graphql(FINISH_REGISTRATION, { r: response }, bearer(accessToken));
    expect(failure(again)).toEqual({ code: 'BAD_USER_INPUT', reason: 'PASSKEY_INVALID' });
    const events = await gateway.graphql('{ securityEvents { nodes { type details } } }', {}, bearer(accessToken));
    expect(events.data!.securityEvents.nodes[0]).toMatchObject({ type: 'mfa.enrolled', details: { kind: 'passkey', factorId: factor.id } });
  });

  it('signs in without a password (discoverable credential, user verified): amr hwk, acr aal2', async () => {
    const { user } = await registered();
    const assertion = await get(await passwordlessOptions());
    const signedIn = await gateway.graphql(FINISH_CHALLENGE, { r: assertion });
    expect(signedIn.errors).toEqual([]);
    expect(signedIn.data!.finishPasskeyChallenge.user.id).toBe(user.id);
    expect(claimsOf(signedIn.data!.finishPasskeyChallenge.accessToken)).toMatchObject({ sub: user.id, amr: ['hwk', 'mfa'], acr: 'aal2' });
    // The challenge was single use.
    const replayed = await gateway.graphql(FINISH_CHALLENGE, { r: assertion });
    expect(failure(replayed)).toEqual({ code: 'UNAUTHENTICATED', reason: 'PASSKEY_INVALID' });
  });

  it('is the second factor of a password sign-in: MFA_REQUIRED, then the passkey; amr pwd hwk mfa', async () => {
    const { user } = await registered();
    const token = await mfaToken(user.email);
    const options = await gateway.graphql(START_CHALLENGE, { t: token });
    expect(options.errors).toEqual([]);
    expect(options.data!.startPasskeyChallenge).toMatchObject({ rpId: 'localhost', userVerification: 'preferred' });
    const assertion = await get(options.data!.startPasskeyChallenge);
    const signedIn = await gateway.graphql(FINISH_CHALLENGE, { t: token, r: assertion });
    expect(signedIn.errors).toEqual([]);
    expect(claimsOf(signedIn.data!.finishPasskeyChallenge.accessToken)).toMatchObject({ sub: user.id, amr: ['pwd', 'hwk', 'mfa'], acr: 'aal2' });
    // The ticket is spent.
    const again = await gateway.graphql(FINISH_CHALLENGE, { t: token, r: assertion });
    expect(failure(again)).toEqual({ code: 'UNAUTHENTICATED', reason: 'MFA_TOKEN_INVALID' });
  });

  it('refuses a response for another challenge, origin or RP ID, a lower counter, or malformed JSON; nothing is created', async () => {
    const { user } = await registered();
    const sessionsBefore = (await gateway.store.listSessions(user.id, Date.now())).length;

    // A challenge the gateway never issued.
    const made = await passwordlessOptions();
    const foreign = await get({ ...made, challenge: Buffer.from('not issued by the gateway').toString('base64url') });
    expect(failure(await gateway.graphql(FINISH_CHALLENGE, { r: foreign }))).toEqual({ code: 'UNAUTHENTICATED', reason: 'PASSKEY_INVALID' });

    // Another origin (same RP ID, another port): a real challenge, signed there.
    const elsewhere = await page.context().newPage();
    await elsewhere.goto(`http://localhost:${otherSite.port}/`);
    const other = await page.context().newCDPSession(elsewhere);
    await other.send('WebAuthn.enable');
    const { authenticatorId: otherId } = await other.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    // The same credential, copied into that tab's authenticator.
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    for (const credential of credentials) await other.send('WebAuthn.addCredential', { authenticatorId: otherId, credential });
    const wrongOrigin = await get(await passwordlessOptions(), elsewhere);
    expect(failure(await gateway.graphql(FINISH_CHALLENGE, { r: wrongOrigin }))).toEqual({ code: 'UNAUTHENTICATED', reason: 'PASSKEY_INVALID' });
    await elsewhere.close();

    // Another RP ID: the authenticator data names another relying party (its hash), as an
    // assertion relayed from a look-alike site would.
    const genuine = await get(await passwordlessOptions());
    const data = Buffer.from(genuine.response.authenticatorData, 'base64url');
    createHash('sha256').update('evil.example').digest().copy(data, 0);
    const relayed = { ...genuine, response: { ...genuine.response, authenticatorData: data.toString('base64url') } };
    expect(failure(await gateway.graphql(FINISH_CHALLENGE, { r: relayed }))).toEqual({ code: 'UNAUTHENTICATED', reason: 'PASSKEY_INVALID' });

    // A lower counter: two assertions, the later one used first.
    const earlier = await get(await passwordlessOptions());
    const later = await get(await passwordlessOptions());
    expect((await gateway.graphql(FINISH_CHALLENGE, { r: later })).errors).toEqual([]);
    expect(failure(await gateway.graphql(FINISH_CHALLENGE, { r: earlier }))).toEqual({ code: 'UNAUTHENTICATED', reason: 'PASSKEY_INVALID' });

    // Malformed: not an object, fields missing, clientDataJSON not JSON, huge.
    const bad = [
      'a string',
      [],
      { id: genuine.id },
      { ...genuine, type: 'password' },
      { ...genuine, response: { ...genuine.response, clientDataJSON: Buffer.from('{not json').toString('base64url') } },
      { ...genuine, response: { ...genuine.response, signature: 'not base64url!' } },
    ];
    for (const response of bad) {
      expect(failure(await gateway.graphql(FINISH_CHALLENGE, { r: response }))).toEqual({ code: 'BAD_USER_INPUT', reason: 'PASSKEY_RESPONSE_MALFORMED' });
    }
    // One sign-in (the `later` one) and nothing else.
    expect((await gateway.store.listSessions(user.id, Date.now())).length).toBe(sessionsBefore + 1);
  });

  it('reauthenticates with the passkey (alone: aal1; with the password: aal2), in the same session', async () => {
    const REAUTH = `mutation($p: String, $r: JSON) { reauthenticate(password: $p, passkeyResponse: $r) { accessToken session { id } } }`;
    const { accessToken, session } = await registered();
    const alone = await gateway.graphql(REAUTH, { r: await get(await passwordlessOptions()) }, bearer(accessToken));
    expect(alone.errors).toEqual([]);
    expect(alone.data!.reauthenticate.session.id).toBe(session.id);
    expect(claimsOf(alone.data!.reauthenticate.accessToken)).toMatchObject({ amr: ['hwk'], acr: 'aal1' });
    const both = await gateway.graphql(REAUTH, { p: TEST_PASSWORD, r: await get(await passwordlessOptions()) }, bearer(accessToken));
    expect(both.errors).toEqual([]);
    expect(claimsOf(both.data!.reauthenticate.accessToken)).toMatchObject({ amr: ['pwd', 'hwk', 'mfa'], acr: 'aal2' });
    // Another user's passkey does not reauthenticate this one.
    const other = await signUp(gateway);
    const foreign = await gateway.graphql(REAUTH, { r: await get(await passwordlessOptions()) }, bearer(other.accessToken));
    expect(failure(foreign)).toEqual({ code: 'UNAUTHENTICATED', reason: 'PASSKEY_INVALID' });
  });

  it('removes a passkey (fresh authentication); it signs in no more', async () => {
    const { factor } = await registered();
    const assertion = await get(await passwordlessOptions());
    const signedIn = await gateway.graphql(FINISH_CHALLENGE, { r: assertion });
    const token = signedIn.data!.finishPasskeyChallenge.accessToken as string;
    const removed = await gateway.graphql('mutation($id: ID!) { removeFactor(id: $id) }', { id: factor.id }, bearer(token));
    expect(removed.data).toEqual({ removeFactor: true });
    expect((await gateway.graphql('{ factors { id } }', {}, bearer(token))).data!.factors).toEqual([]);
    // The browser still holds the credential; the gateway no longer accepts it.
    const after = await get(await passwordlessOptions());
    expect(failure(await gateway.graphql(FINISH_CHALLENGE, { r: after }))).toEqual({ code: 'UNAUTHENTICATED', reason: 'PASSKEY_INVALID' });
  });
});

