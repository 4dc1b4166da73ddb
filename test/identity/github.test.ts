import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { bearer, createTestServer, type TestServer, uniqueEmail } from '../helpers/testServer.js';
import { closeServer, CookieBrowser, EXCHANGE, listenFirst, locationOf, providersFile } from './support.js';

/**
 * The `github` preset. GitHub cannot run here, so a small local server of the test's own stands
 * in for it, answering as GitHub documents: `POST /login/oauth/access_token` (JSON with
 * `Accept: application/json`; a refused code is a 200 with an `error` member), `GET /user` (the
 * numeric `id`), `GET /user/emails` (`[{ email, primary, verified, visibility }]`). The preset's
 * URLs are overridden in the providers file to point at it.
 */
const APP = 'http://localhost:5173/auth/done';

interface GithubPerson {
  id: number;
  login: string;
  emails: { email: string; primary: boolean; verified: boolean; visibility: string | null }[];
}

async function startGithub() {
  const { server, url, handle } = await listenFirst();
  const grants = new Map<string, { person: GithubPerson; challenge: string; redirectUri: string; clientId: string }>();
  const tokens = new Map<string, GithubPerson>();
  const seen: { tokenForms: URLSearchParams[]; apiHeaders: IncomingMessage['headers'][] } = { tokenForms: [], apiHeaders: [] };
  let n = 0;
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(body));
  };
  handle(async (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/login/oauth/access_token' && req.method === 'POST') {
      let body = '';
      for await (const chunk of req) body += chunk;
      const form = new URLSearchParams(body);
      seen.tokenForms.push(form);
      const grant = grants.get(form.get('code') ?? '');
      grants.delete(form.get('code') ?? '');
      const challenge = createHash('sha256').update(form.get('code_verifier') ?? '').digest('base64url');
      if (!grant || grant.challenge !== challenge || grant.redirectUri !== form.get('redirect_uri') || form.get('client_secret') !== 'gh-secret') {
        return json(res, 200, { error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' });
      }
      const token = `gho_${++n}`;
      tokens.set(token, grant.person);
      return json(res, 200, { access_token: token, token_type: 'bearer', scope: 'read:user,user:email' });
    }
    const person = tokens.get((req.headers.authorization ?? '').replace(/^Bearer /, ''));
    if (path === '/user' || path === '/user/emails') {
      seen.apiHeaders.push(req.headers);
      if (!person) return json(res, 401, { message: 'Bad credentials' });
      return path === '/user' ? json(res, 200, { login: person.login, id: person.id, email: null }) : json(res, 200, person.emails);
    }
    json(res, 404, { message: 'Not Found' });
  });
  return {
    url,
    seen,
    /** What GitHub does after the person approves: a code for this authorize request. */
    approve(authorize: URLSearchParams, person: GithubPerson): string {
      const code = `ghcode_${++n}`;
      grants.set(code, {
        person,
        challenge: authorize.get('code_challenge') ?? '',
        redirectUri: authorize.get('redirect_uri') ?? '',
        clientId: authorize.get('client_id') ?? '',
      });
      return code;
    },
    close: () => closeServer(server),
  };
}

describe('sign-in with GitHub (a local stand-in for GitHub)', { timeout: 20_000 }, () => {
  let github: Awaited<ReturnType<typeof startGithub>>;
  let server: TestServer;
  let gateway: string;
  let nextId = 1000;

  beforeAll(async () => {
    github = await startGithub();
    const port = await freePort();
    gateway = `http://127.0.0.1:${port}`;
    const file = providersFile([
      {
        id: 'github',
        kind: 'github',
        clientId: 'gh-client',
        clientSecret: 'gh-secret',
        authorizationUrl: `${github.url}/login/oauth/authorize`,
        tokenUrl: `${github.url}/login/oauth/access_token`,
        userInfoUrl: `${github.url}/user`,
        emailsUrl: `${github.url}/user/emails`,
      },
    ]);
    server = await createTestServer({ store: 'redis', port, env: { AUTH_ISSUER: gateway, IDENTITY_PROVIDERS_FILE: file, AUTH_REDIRECT_URIS: APP } });
  });

  afterAll(async () => {
    await server?.close();
    await github?.close();
  });

  function person(emails: GithubPerson['emails']): GithubPerson {
    nextId += 1;
    return { id: nextId, login: `octo${nextId}`, emails };
  }

  async function signInAs(who: GithubPerson, tamper?: (callback: URL) => void): Promise<URL> {
    const browser = new CookieBrowser();
    const startUrl = `${gateway}/auth/github/start?redirect_uri=${encodeURIComponent(APP)}`;
    const started = await browser.request(startUrl);
    expect(started.status).toBe(302);
    const authorize = new URL(locationOf(started, startUrl));
    expect(authorize.origin + authorize.pathname).toBe(`${github.url}/login/oauth/authorize`);
    expect(authorize.searchParams.get('client_id')).toBe('gh-client');
    expect(authorize.searchParams.get('scope')).toBe('read:user user:email');
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    const callback = new URL(authorize.searchParams.get('redirect_uri')!);
    expect(callback.href).toBe(`${gateway}/auth/github/callback`);
    callback.searchParams.set('code', github.approve(authorize.searchParams, who));
    callback.searchParams.set('state', authorize.searchParams.get('state')!);
    tamper?.(callback);
    const back = await browser.request(callback.href);
    expect(back.status).toBe(302);
    return new URL(back.headers.get('location')!);
  }

  it('signs in with the primary verified email; the subject is the numeric user id', async () => {
    const email = uniqueEmail();
    const who = person([
      { email: `other-${email}`, primary: false, verified: true, visibility: null },
      { email, primary: true, verified: true, visibility: 'private' },
    ]);
    const back = await signInAs(who);
    const exchanged = await server.graphql(EXCHANGE, { code: back.searchParams.get('code') });
    expect(exchanged.errors).toEqual([]);
    expect(exchanged.data!.exchangeLoginCode.user.email).toBe(email);
    const me = await server.graphql(`{ identities { provider subject email } }`, {}, bearer(exchanged.data!.exchangeLoginCode.accessToken));
    expect(me.data!.identities).toEqual([{ provider: 'github', subject: String(who.id), email }]);
    // As GitHub documents its API: a bearer token, its media type and API version.
    const headers = github.seen.apiHeaders.at(-1)!;
    expect(headers.accept).toBe('application/vnd.github+json');
    expect(headers['x-github-api-version']).toBe('2022-11-28');
    // The code exchange carried the PKCE verifier and the callback.
    const form = github.seen.tokenForms.at(-1)!;
    expect(form.get('code_verifier')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(form.get('redirect_uri')).toBe(`${gateway}/auth/github/callback`);
  });

  it('an unverified primary email never links to the account that has it', async () => {
    const email = uniqueEmail();
    const answer = await server.graphql(`mutation($e: String!) { signup(email: $e, password: "correct horse battery") { user { id } } }`, { e: email });
    expect(answer.errors).toEqual([]);
    const back = await signInAs(person([{ email, primary: true, verified: false, visibility: null }]));
    expect(back.searchParams.get('error')).toBe('email_not_verified');
    expect(back.searchParams.get('code')).toBeNull();
  });

  it('a code GitHub refuses (its 200 with an error member) is ?error=provider_error', async () => {
    const back = await signInAs(person([{ email: uniqueEmail(), primary: true, verified: true, visibility: null }]), (callback) =>
      callback.searchParams.set('code', 'ghcode_forged'),
    );
    expect(back.searchParams.get('error')).toBe('provider_error');
  });

  it('the person declining on GitHub (?error=access_denied) comes back with that error', async () => {
    const back = await signInAs(person([]), (callback) => {
      callback.searchParams.delete('code');
      callback.searchParams.set('error', 'access_denied');
    });
    expect(back.searchParams.get('error')).toBe('access_denied');
  });

  it('no email at all: ?error=email_missing', async () => {
    const back = await signInAs(person([]));
    expect(back.searchParams.get('error')).toBe('email_missing');
  });
});
