import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { closeServer, listenFirst } from './support.js';

/**
 * A small OpenID Provider of the test's own, signing with jose keys, for the abuse cases that
 * node-oidc-provider (which only signs correct tokens) cannot produce: an ID token from another
 * issuer, for another audience, expired, signed with another key, with another nonce; a token
 * endpoint that answers 500 or never answers. It checks PKCE and spends each code once, as a
 * real provider does.
 */
export type TokenMode = 'ok' | 'wrong_iss' | 'wrong_aud' | 'expired' | 'other_key' | 'wrong_nonce' | 'status500' | 'hang';

export interface FakeProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  mode: TokenMode;
  /** The person the next code is for. */
  person: { sub: string; email?: string; email_verified?: boolean };
  /** What /authorize last received. */
  lastAuthorize: URLSearchParams | null;
  /** Codes issued by /authorize (as the browser would carry them to the callback). */
  issueCode(authorize: URLSearchParams): string;
  tokenRequests: number;
  close(): Promise<void>;
}

export async function startFakeProvider(): Promise<FakeProvider> {
  const { server, url, handle } = await listenFirst();
  const signing = await generateKeyPair('ES256', { extractable: true });
  const stranger = await generateKeyPair('ES256', { extractable: true });
  const publicJwk: JWK = { ...(await exportJWK(signing.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const codes = new Map<string, { challenge: string; nonce: string; redirectUri: string; spent: boolean }>();
  const hanging = new Set<ServerResponse>();
  let counter = 0;

  const fake: FakeProvider = {
    issuer: url,
    clientId: 'tessera',
    clientSecret: 'fake-secret',
    mode: 'ok',
    person: { sub: 'person-1', email: 'person1@example.com', email_verified: true },
    lastAuthorize: null,
    tokenRequests: 0,
    issueCode(authorize) {
      const code = `code-${++counter}-${Math.random().toString(36).slice(2)}`;
      codes.set(code, {
        challenge: authorize.get('code_challenge') ?? '',
        nonce: authorize.get('nonce') ?? '',
        redirectUri: authorize.get('redirect_uri') ?? '',
        spent: false,
      });
      return code;
    },
    async close() {
      for (const res of hanging) res.destroy();
      await closeServer(server);
    },
  };

  async function idToken(nonce: string): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const { mode, person } = fake;
    const jwt = new SignJWT({ ...person, nonce: mode === 'wrong_nonce' ? 'another-nonce' : nonce })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
      .setSubject(person.sub)
      .setIssuer(mode === 'wrong_iss' ? 'https://evil.example.com' : url)
      .setAudience(mode === 'wrong_aud' ? 'someone-else' : fake.clientId)
      .setIssuedAt(mode === 'expired' ? now - 7200 : now)
      .setExpirationTime(mode === 'expired' ? now - 3600 : now + 300);
    return jwt.sign(mode === 'other_key' ? stranger.privateKey : signing.privateKey);
  }

  async function token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    fake.tokenRequests += 1;
    let body = '';
    for await (const chunk of req) body += chunk;
    if (fake.mode === 'hang') {
      hanging.add(res);
      return;
    }
    if (fake.mode === 'status500') return json(res, 500, { error: 'server_error' });
    const form = new URLSearchParams(body);
    const grant = codes.get(form.get('code') ?? '');
    const verifier = form.get('code_verifier') ?? '';
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    if (form.get('client_secret') !== fake.clientSecret) return json(res, 401, { error: 'invalid_client' });
    if (!grant || grant.spent || grant.challenge !== challenge || grant.redirectUri !== form.get('redirect_uri')) {
      if (grant) grant.spent = true;
      return json(res, 400, { error: 'invalid_grant' });
    }
    grant.spent = true;
    return json(res, 200, { access_token: 'at-' + counter, token_type: 'Bearer', expires_in: 300, id_token: await idToken(grant.nonce) });
  }

  handle((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/.well-known/openid-configuration') {
      return json(res, 200, {
        issuer: url,
        authorization_endpoint: `${url}/authorize`,
        token_endpoint: `${url}/token`,
        jwks_uri: `${url}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['ES256'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['client_secret_post'],
      });
    }
    if (path === '/jwks') return json(res, 200, { keys: [publicJwk] });
    if (path === '/token' && req.method === 'POST') {
      token(req, res).catch(() => res.destroy());
      return;
    }
    if (path === '/authorize') {
      fake.lastAuthorize = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
      return json(res, 200, { authorize: 'seen' });
    }
    json(res, 404, { error: 'not found' });
  });
  return fake;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
