import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Provider, { type Configuration } from 'oidc-provider';
import { expect } from 'vitest';

export const EXCHANGE = `mutation($code: String!) { exchangeLoginCode(code: $code) {
  accessToken refreshToken user { id email } session { id } } }`;

/** A person at the test's identity provider. */
export interface TestAccount {
  sub: string;
  email?: string;
  email_verified?: boolean;
}

export interface TestOidcProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  accounts: Map<string, TestAccount>;
  provider: Provider;
  close(): Promise<void>;
}

/** An HTTP server whose handler is set once its port is known (issuers and callbacks name their port). */
export async function listenFirst(): Promise<{ server: Server; url: string; handle(h: (req: IncomingMessage, res: ServerResponse) => void): void }> {
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(503).end();
  const server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { server, url: `http://127.0.0.1:${port}`, handle: (h) => (handler = h) };
}

export function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * A real OpenID Provider (node-oidc-provider, certified) on a free port: one client registered
 * for Tessera (its callback `callbackUrl`), the accounts of the test (findAccount), and its
 * development login and consent pages (devInteractions), driven by `signIn` below.
 */
export async function startOidcProvider(callbackUrl: string, options: { accounts?: TestAccount[] } = {}): Promise<TestOidcProvider> {
  const { server, url, handle } = await listenFirst();
  const accounts = new Map((options.accounts ?? []).map((a) => [a.sub, a]));
  const clientId = 'tessera';
  const clientSecret = 'tessera-test-secret-0123456789abcdef';
  const configuration: Configuration = {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [callbackUrl],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    // The email claims go in the ID token itself (as Google's do), not only the userinfo answer.
    conformIdTokenClaims: false,
    cookies: { keys: ['identity-test-cookie-key'] },
    pkce: { required: () => true },
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 600, Grant: 600 },
    findAccount: async (_ctx, sub) => {
      const account = accounts.get(sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        claims: async () => ({
          sub,
          ...(account.email !== undefined ? { email: account.email } : {}),
          ...(account.email_verified !== undefined ? { email_verified: account.email_verified } : {}),
        }),
      };
    },
  };
  const provider = new Provider(url, configuration);
  handle(provider.callback());
  return { issuer: url, clientId, clientSecret, accounts, provider, close: () => closeServer(server) };
}

/** Writes an IDENTITY_PROVIDERS_FILE (JSON) and returns its path. */
export function providersFile(providers: unknown[], name = 'providers.json'): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-idp-'));
  const file = join(dir, name);
  writeFileSync(file, typeof providers === 'string' ? providers : JSON.stringify(providers));
  return file;
}

/** A browser without a page: fetch with a cookie jar per origin, redirects followed by hand. */
export class CookieBrowser {
  readonly jar = new Map<string, Map<string, string>>();

  cookies(origin: string): Map<string, string> {
    let cookies = this.jar.get(origin);
    if (!cookies) this.jar.set(origin, (cookies = new Map()));
    return cookies;
  }

  async request(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Response> {
    const target = new URL(url);
    const cookies = this.cookies(target.origin);
    const headers: Record<string, string> = { 'user-agent': 'identity-test-browser' };
    if (cookies.size > 0) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    let body: string | undefined;
    if (init.form) {
      body = new URLSearchParams(init.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const response = await fetch(url, { method: init.method ?? (body ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const at = pair!.indexOf('=');
      const name = pair!.slice(0, at).trim();
      const value = pair!.slice(at + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === '';
      if (expired) cookies.delete(name);
      else cookies.set(name, value);
    }
    return response;
  }
}

/** Where a redirect goes, resolved against the URL that answered it. */
export function locationOf(response: Response, from: string): string {
  const location = response.headers.get('location');
  expect(location, `a redirect from ${from}`).toBeTruthy();
  return new URL(location!, from).href;
}

/**
 * Follows a flow from `startUrl` through the provider's login and consent pages (as the person
 * `login`) until a redirect leaves for `appOrigin`; returns that URL. `stopAt` stops earlier at
 * a URL with that prefix (to tamper with the callback).
 */
export async function signIn(
  browser: CookieBrowser,
  startUrl: string,
  options: { login: string; appOrigin: string; stopAt?: string; consent?: 'accept' | 'abort' },
): Promise<string> {
  let url = startUrl;
  for (let step = 0; step < 20; step++) {
    if (options.stopAt && url.startsWith(options.stopAt)) return url;
    if (url.startsWith(options.appOrigin)) return url;
    let response = await browser.request(url);
    if (response.status === 200 && /\/interaction\/[^/]+$/.test(new URL(url).pathname)) {
      const html = await response.text();
      if (html.includes('name="login"')) {
        response = await browser.request(url, { form: { prompt: 'login', login: options.login, password: 'any' } });
      } else if (options.consent === 'abort') {
        response = await browser.request(`${url}/abort`);
      } else {
        expect(html).toContain('value="consent"');
        response = await browser.request(url, { form: { prompt: 'consent' } });
      }
    }
    if (response.status < 300 || response.status >= 400) {
      throw new Error(`${url} answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
    }
    url = locationOf(response, url);
  }
  throw new Error('the flow did not end');
}
