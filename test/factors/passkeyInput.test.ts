import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createTestServer, signUp, type TestServer } from '../helpers/testServer.js';
import { failure } from './support.js';

/*
 * Bad WebAuthn input over HTTP, without a browser: each answer a contract code with a reason,
 * never a 500, and nothing registered. (The ceremonies themselves: test/browser/passkeys.test.ts.)
 */
const FINISH_REGISTRATION = `mutation($r: JSON!) { finishPasskeyRegistration(response: $r) { id } }`;
const START_CHALLENGE = `mutation($t: String) { startPasskeyChallenge(mfaToken: $t) }`;
const FINISH_CHALLENGE = `mutation($t: String, $r: JSON!) { finishPasskeyChallenge(mfaToken: $t, response: $r) { accessToken } }`;

const b64 = (text: string) => Buffer.from(text).toString('base64url');
const clientData = (challenge: string, type = 'webauthn.create') => b64(JSON.stringify({ type, challenge, origin: 'http://localhost:4000' }));

describe('malformed and foreign WebAuthn responses', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await createTestServer({ store: 'memory' });
  });
  afterAll(() => server?.close());

  it('registration: malformed JSON is BAD_USER_INPUT PASSKEY_RESPONSE_MALFORMED; a well-formed one for no challenge of ours PASSKEY_INVALID; nothing registered', async () => {
    const { accessToken } = await signUp(server);
    const options = await server.graphql('mutation { startPasskeyRegistration }', {}, bearer(accessToken));
    expect(options.errors).toEqual([]);
    const shaped = { id: 'AAAA', rawId: 'AAAA', type: 'public-key', response: { clientDataJSON: clientData('bm90LWlzc3VlZA'), attestationObject: 'AAAA' } };
    for (const response of [42, 'text', [], {}, { ...shaped, id: 'not base64url!' }, { ...shaped, response: { clientDataJSON: b64('[1,2') } }, { ...shaped, response: 'x' }]) {
      const answer = await server.graphql(FINISH_REGISTRATION, { r: response }, bearer(accessToken));
      expect(failure(answer), JSON.stringify(response)).toEqual({ code: 'BAD_USER_INPUT', reason: 'PASSKEY_RESPONSE_MALFORMED' });
    }
    expect(failure(await server.graphql(FINISH_REGISTRATION, { r: shaped }, bearer(accessToken)))).toEqual({ code: 'BAD_USER_INPUT', reason: 'PASSKEY_INVALID' });
    // The challenge the gateway did issue, with an attestation that is not one.
    const issued = { ...shaped, response: { clientDataJSON: clientData(options.data!.startPasskeyRegistration.challenge), attestationObject: 'AAAA' } };
    expect(failure(await server.graphql(FINISH_REGISTRATION, { r: issued }, bearer(accessToken)))).toEqual({ code: 'BAD_USER_INPUT', reason: 'PASSKEY_INVALID' });
    expect((await server.graphql('{ factors { id } }', {}, bearer(accessToken))).data!.factors).toEqual([]);
    // Signed out: no registration at all.
    expect(failure(await server.graphql(FINISH_REGISTRATION, { r: shaped })).code).toBe('UNAUTHENTICATED');
  });

  it('assertion: malformed is BAD_USER_INPUT, a forged mfaToken or a foreign assertion UNAUTHENTICATED', async () => {
    const options = await server.graphql(START_CHALLENGE, {});
    expect(options.data!.startPasskeyChallenge).toMatchObject({ userVerification: 'required', challenge: expect.any(String) });
    const assertion = {
      id: 'AAAA',
      rawId: 'AAAA',
      type: 'public-key',
      response: { clientDataJSON: clientData(options.data!.startPasskeyChallenge.challenge, 'webauthn.get'), authenticatorData: 'AAAA', signature: 'AAAA', userHandle: b64('x'.repeat(22)) },
    };
    expect(failure(await server.graphql(FINISH_CHALLENGE, { r: { ...assertion, response: { ...assertion.response, signature: undefined } } }))).toEqual({
      code: 'BAD_USER_INPUT',
      reason: 'PASSKEY_RESPONSE_MALFORMED',
    });
    expect(failure(await server.graphql(FINISH_CHALLENGE, { r: assertion }))).toEqual({ code: 'UNAUTHENTICATED', reason: 'PASSKEY_INVALID' });
    expect(failure(await server.graphql(START_CHALLENGE, { t: 'forged' }))).toEqual({ code: 'UNAUTHENTICATED', reason: 'MFA_TOKEN_INVALID' });
    expect(failure(await server.graphql(FINISH_CHALLENGE, { t: 'forged', r: assertion }))).toEqual({ code: 'UNAUTHENTICATED', reason: 'MFA_TOKEN_INVALID' });
  });
});
