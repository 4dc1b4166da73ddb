import * as oidc from 'openid-client';
import type { Logger } from '../logger.js';
import { FlowError } from './flowError.js';
import type { ProviderSettings } from './settings.js';

/** Who the provider says signed in. */
export interface ProviderProfile {
  /** Stable id at the provider: the ID token's `sub`, GitHub's numeric user id. */
  subject: string;
  email: string | null;
  /** Only true when the provider itself asserts the email as verified. */
  emailVerified: boolean;
}

/** What one flow sent, and must find again in the answer. */
export interface FlowChecks {
  state: string;
  nonce: string;
  codeVerifier: string;
}

/** One provider of IDENTITY_PROVIDERS_FILE. Every failure is a FlowError with the `?error=` reason. */
export interface ProviderClient {
  readonly id: string;
  authorizationUrl(request: { state: string; nonce: string; codeChallenge: string }): Promise<URL>;
  /** From the callback's URL: code exchange, every check, the profile. */
  complete(callbackUrl: URL, checks: FlowChecks): Promise<ProviderProfile>;
}

export interface ProviderOptions {
  /** AUTH_ISSUER + /auth/{id}/callback. */
  callbackUrl: string;
  timeoutMs: number;
  logger: Logger;
}

export function createProviderClient(settings: ProviderSettings, options: ProviderOptions): ProviderClient {
  return settings.kind === 'github' ? new GithubClient(settings, options) : new OidcClient(settings, options);
}

/**
 * Any OpenID Connect provider, through discovery at `issuer` (openid-client, certified relying
 * party): code flow with PKCE S256, state and nonce; the ID token's signature is checked even
 * though it comes from the token endpoint (enableNonRepudiationChecks), then `iss`, `aud`,
 * `azp`, `exp`, `iat` and `nonce`.
 */
class OidcClient implements ProviderClient {
  private configuration: Promise<oidc.Configuration> | null = null;

  constructor(
    private readonly settings: ProviderSettings,
    private readonly options: ProviderOptions,
  ) {}

  get id(): string {
    return this.settings.id;
  }

  /** Discovered once; a failed discovery is tried again on the next flow. */
  private config(): Promise<oidc.Configuration> {
    this.configuration ??= this.discover().catch((error: unknown) => {
      this.configuration = null;
      throw error;
    });
    return this.configuration;
  }

  private async discover(): Promise<oidc.Configuration> {
    const { settings } = this;
    const issuer = new URL(settings.issuer!);
    const insecure = issuer.protocol === 'http:';
    let discovered: oidc.Configuration;
    try {
      discovered = await oidc.discovery(issuer, settings.clientId, settings.clientSecret, undefined, {
        timeout: Math.ceil(this.options.timeoutMs / 1000),
        ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
      });
    } catch (error) {
      throw this.translate(error, 'discovery');
    }
    // Plain JSON of the discovered metadata (without the library's helper methods).
    const metadata = JSON.parse(JSON.stringify(discovered.serverMetadata())) as oidc.ServerMetadata;
    const configuration = new oidc.Configuration(
      {
        ...metadata,
        ...(settings.authorizationUrl ? { authorization_endpoint: settings.authorizationUrl } : {}),
        ...(settings.tokenUrl ? { token_endpoint: settings.tokenUrl } : {}),
        ...(settings.userInfoUrl ? { userinfo_endpoint: settings.userInfoUrl } : {}),
      },
      settings.clientId,
      settings.clientSecret,
    );
    configuration.timeout = Math.ceil(this.options.timeoutMs / 1000);
    if (insecure) oidc.allowInsecureRequests(configuration);
    // The contract wants the ID token's signature checked whatever channel it came through.
    oidc.enableNonRepudiationChecks(configuration);
    return configuration;
  }

  async authorizationUrl(request: { state: string; nonce: string; codeChallenge: string }): Promise<URL> {
    const configuration = await this.config();
    return oidc.buildAuthorizationUrl(configuration, {
      redirect_uri: this.options.callbackUrl,
      scope: this.settings.scopes.join(' '),
      response_type: 'code',
      state: request.state,
      nonce: request.nonce,
      code_challenge: request.codeChallenge,
      code_challenge_method: 'S256',
    });
  }

  async complete(callbackUrl: URL, checks: FlowChecks): Promise<ProviderProfile> {
    const configuration = await this.config();
    let claims: oidc.IDToken | undefined;
    let accessToken: string;
    try {
      const tokens = await oidc.authorizationCodeGrant(
        configuration,
        callbackUrl,
        { pkceCodeVerifier: checks.codeVerifier, expectedState: checks.state, expectedNonce: checks.nonce, idTokenExpected: true },
        { redirect_uri: this.options.callbackUrl },
      );
      claims = tokens.claims();
      accessToken = tokens.access_token;
    } catch (error) {
      throw this.translate(error, 'token');
    }
    if (!claims || typeof claims.sub !== 'string' || claims.sub === '') throw new FlowError('invalid_id_token');
    let email = typeof claims.email === 'string' ? claims.email : null;
    let verified = asserted(claims.email_verified);
    if (email === null && configuration.serverMetadata().userinfo_endpoint) {
      try {
        const info = await oidc.fetchUserInfo(configuration, accessToken, claims.sub);
        if (typeof info.email === 'string') {
          email = info.email;
          verified = asserted(info.email_verified);
        }
      } catch (error) {
        throw this.translate(error, 'userinfo');
      }
    }
    return { subject: claims.sub, email, emailVerified: email !== null && verified };
  }

  /** A library error → the reason the browser is sent back with (the details go to the log only). */
  private translate(error: unknown, step: string): FlowError {
    const reason = classify(error);
    this.options.logger.warn(
      { provider: this.settings.id, step, reason, err: { name: (error as Error)?.name, code: (error as { code?: unknown })?.code, message: (error as Error)?.message } },
      'identity provider step failed',
    );
    return new FlowError(reason);
  }
}

function asserted(value: unknown): boolean {
  return value === true || value === 'true';
}

/** The checks of an ID token (or a JWT answer) failed: its messages name the JWT or a claim. */
const ID_TOKEN_FAILURE = /ID Token|JWS|JWT|nonce|"(iss|aud|azp|exp|iat|sub)"/i;

/** A library error → the `?error=` reason (the error and its causes, as openid-client wraps oauth4webapi's). */
export function classify(error: unknown): FlowError['reason'] {
  if (error instanceof FlowError) return error.reason;
  if (error instanceof oidc.AuthorizationResponseError) return error.error === 'access_denied' ? 'access_denied' : 'provider_error';
  if (error instanceof oidc.ResponseBodyError) return 'provider_error';
  const chain: { name?: string; code?: string; message?: string }[] = [];
  for (let e = error as { cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    chain.push(e as { name?: string; code?: string; message?: string });
  }
  const unreachable = chain.some(
    (e) =>
      e.name === 'TimeoutError' ||
      e.name === 'AbortError' ||
      (e.name === 'TypeError' && /fetch failed/i.test(e.message ?? '')) ||
      (typeof e.code === 'string' && /^(ECONN|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|UND_ERR)/.test(e.code)),
  );
  if (unreachable) return 'provider_unavailable';
  if (chain.some((e) => e instanceof oidc.ResponseBodyError)) return 'provider_error';
  if (chain.some((e) => ID_TOKEN_FAILURE.test(e.message ?? ''))) return 'invalid_id_token';
  return 'provider_error';
}

/** GitHub's documented endpoints (overridable in the file). */
const GITHUB = {
  authorizationUrl: 'https://github.com/login/oauth/authorize',
  tokenUrl: 'https://github.com/login/oauth/access_token',
  userInfoUrl: 'https://api.github.com/user',
  emailsUrl: 'https://api.github.com/user/emails',
};

/**
 * GitHub: OAuth 2.0 (it does not speak OpenID Connect) with state and PKCE S256, then `/user`
 * (its numeric `id` is the subject) and `/user/emails` (the primary address, verified as GitHub
 * says).
 */
class GithubClient implements ProviderClient {
  private readonly urls: typeof GITHUB;

  constructor(
    private readonly settings: ProviderSettings,
    private readonly options: ProviderOptions,
  ) {
    this.urls = {
      authorizationUrl: settings.authorizationUrl ?? GITHUB.authorizationUrl,
      tokenUrl: settings.tokenUrl ?? GITHUB.tokenUrl,
      userInfoUrl: settings.userInfoUrl ?? GITHUB.userInfoUrl,
      emailsUrl: settings.emailsUrl ?? GITHUB.emailsUrl,
    };
  }

  get id(): string {
    return this.settings.id;
  }

  async authorizationUrl(request: { state: string; codeChallenge: string }): Promise<URL> {
    const url = new URL(this.urls.authorizationUrl);
    url.searchParams.set('client_id', this.settings.clientId);
    url.searchParams.set('redirect_uri', this.options.callbackUrl);
    url.searchParams.set('scope', this.settings.scopes.join(' '));
    url.searchParams.set('state', request.state);
    url.searchParams.set('code_challenge', request.codeChallenge);
    url.searchParams.set('code_challenge_method', 'S256');
    return url;
  }

  async complete(callbackUrl: URL, checks: FlowChecks): Promise<ProviderProfile> {
    const params = callbackUrl.searchParams;
    if (params.get('state') !== checks.state) throw new FlowError('invalid_state');
    const error = params.get('error');
    if (error !== null) throw new FlowError(error === 'access_denied' ? 'access_denied' : 'provider_error');
    const code = params.get('code');
    if (!code) throw new FlowError('invalid_request');
    const token = await this.call('token', this.urls.tokenUrl, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        client_id: this.settings.clientId,
        client_secret: this.settings.clientSecret,
        code,
        redirect_uri: this.options.callbackUrl,
        code_verifier: checks.codeVerifier,
      }).toString(),
    });
    // GitHub answers a refused code with 200 and an `error` member.
    const accessToken = (token as { access_token?: unknown }).access_token;
    if (typeof accessToken !== 'string' || accessToken === '') throw this.failed('token', 'provider_error', 'no access_token');
    const api = {
      headers: {
        accept: 'application/vnd.github+json',
        authorization: `Bearer ${accessToken}`,
        'x-github-api-version': '2022-11-28',
        'user-agent': 'tessera-gateway',
      },
    };
    const user = (await this.call('user', this.urls.userInfoUrl, api)) as { id?: unknown };
    if (typeof user.id !== 'number' || !Number.isSafeInteger(user.id)) throw this.failed('user', 'provider_error', 'no numeric id');
    const emails = await this.call('emails', this.urls.emailsUrl, api);
    const list = Array.isArray(emails) ? (emails as { email?: unknown; primary?: unknown; verified?: unknown }[]) : [];
    const usable = list.filter((e) => typeof e.email === 'string');
    const chosen = usable.find((e) => e.primary === true) ?? usable.find((e) => e.verified === true) ?? null;
    return {
      subject: String(user.id),
      email: chosen ? (chosen.email as string) : null,
      emailVerified: chosen?.verified === true,
    };
  }

  private async call(step: string, url: string, init: RequestInit): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(this.options.timeoutMs) });
    } catch (error) {
      throw this.failed(step, 'provider_unavailable', (error as Error).name);
    }
    if (!response.ok) throw this.failed(step, 'provider_error', `HTTP ${response.status}`);
    try {
      return await response.json();
    } catch {
      throw this.failed(step, 'provider_error', 'not JSON');
    }
  }

  private failed(step: string, reason: FlowError['reason'], detail: string): FlowError {
    this.options.logger.warn({ provider: this.settings.id, step, reason, detail }, 'identity provider step failed');
    return new FlowError(reason);
  }
}
