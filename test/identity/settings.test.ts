import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { providersFile } from './support.js';

/** IDENTITY_PROVIDERS_FILE and AUTH_REDIRECT_URIS are checked at start, one line naming the variable. */
const APP = 'https://app.example.com/auth/done';

function startError(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message.split('\n')).toHaveLength(1);
    return message;
  }
  throw new Error('the configuration was accepted');
}

describe('IDENTITY_PROVIDERS_FILE', () => {
  it('reads JSON: oidc with discovery, github with its preset and overrides, default scopes', () => {
    const file = providersFile([
      { id: 'google', kind: 'oidc', issuer: 'https://accounts.google.com', clientId: 'c', clientSecret: 's' },
      { id: 'github', kind: 'github', clientId: 'gc', clientSecret: 'gs', emailsUrl: 'https://ghe.example.com/api/v3/user/emails' },
    ]);
    const { identity } = loadConfig({ IDENTITY_PROVIDERS_FILE: file, AUTH_REDIRECT_URIS: `${APP}, http://localhost:5173/done` });
    expect(identity.redirectUris).toEqual([APP, 'http://localhost:5173/done']);
    expect(identity.providers).toEqual([
      expect.objectContaining({ id: 'google', kind: 'oidc', issuer: 'https://accounts.google.com', scopes: ['openid', 'email', 'profile'] }),
      expect.objectContaining({ id: 'github', kind: 'github', issuer: null, scopes: ['read:user', 'user:email'], emailsUrl: 'https://ghe.example.com/api/v3/user/emails' }),
    ]);
  });

  it('reads YAML', () => {
    const file = providersFile(
      `- id: microsoft\n  kind: oidc\n  issuer: https://login.microsoftonline.com/common/v2.0\n  clientId: abc\n  clientSecret: def\n  scopes: [email, profile]\n` as never,
      'providers.yaml',
    );
    const { identity } = loadConfig({ IDENTITY_PROVIDERS_FILE: file, AUTH_REDIRECT_URIS: APP });
    expect(identity.providers[0]).toMatchObject({ id: 'microsoft', scopes: ['openid', 'email', 'profile'] });
  });

  it.each([
    [[{ id: 'x', kind: 'oidc', issuer: 'https://x.example', clientId: 'c', clientSecret: 's', clientSecrett: 'typo' }], /unknown field "clientSecrett"/],
    [[{ id: 'x', kind: 'saml', clientId: 'c', clientSecret: 's' }], /kind "saml" is not one of oidc, github/],
    [[{ id: 'x', kind: 'oidc', clientId: 'c', clientSecret: 's' }], /issuer is required for kind oidc/],
    [[{ id: 'x', kind: 'github', clientId: 'c' }], /clientSecret is required/],
    [[{ id: 'X Y', kind: 'github', clientId: 'c', clientSecret: 's' }], /id "X Y" must be/],
    [[{ id: 'x', kind: 'github', clientId: 'c', clientSecret: 's', tokenUrl: 'not a url' }], /tokenUrl "not a url" is not an absolute URL/],
    [
      [
        { id: 'x', kind: 'github', clientId: 'c', clientSecret: 's' },
        { id: 'x', kind: 'github', clientId: 'c', clientSecret: 's' },
      ],
      /the id "x" appears twice/,
    ],
    [{ id: 'x' }, /must be a list of providers/],
  ])('refuses %j at start', (content, message) => {
    const error = startError({ IDENTITY_PROVIDERS_FILE: providersFile(content as unknown[]), AUTH_REDIRECT_URIS: APP });
    expect(error).toMatch(/^IDENTITY_PROVIDERS_FILE/);
    expect(error).toMatch(message);
  });

  it('refuses a file that cannot be read or parsed', () => {
    expect(startError({ IDENTITY_PROVIDERS_FILE: '/nonexistent/providers.json' })).toMatch(/^IDENTITY_PROVIDERS_FILE .*cannot be read/);
    expect(startError({ IDENTITY_PROVIDERS_FILE: providersFile('[{ "id": ' as never), AUTH_REDIRECT_URIS: APP })).toMatch(/not valid JSON or YAML/);
  });

  it('wants AUTH_REDIRECT_URIS with providers, each an absolute http(s) URL without a fragment', () => {
    const file = providersFile([{ id: 'x', kind: 'github', clientId: 'c', clientSecret: 's' }]);
    expect(startError({ IDENTITY_PROVIDERS_FILE: file })).toMatch(/^AUTH_REDIRECT_URIS is required/);
    expect(startError({ AUTH_REDIRECT_URIS: '/relative' })).toMatch(/^AUTH_REDIRECT_URIS: "\/relative" is not an absolute URL/);
    expect(startError({ AUTH_REDIRECT_URIS: `${APP}#x` })).toMatch(/has a fragment/);
    expect(startError({ AUTH_REDIRECT_URIS: 'ftp://app.example.com/x' })).toMatch(/not an http\(s\) URL/);
  });

  it('IDENTITY_PROVIDER_TIMEOUT is a duration', () => {
    expect(loadConfig({ IDENTITY_PROVIDER_TIMEOUT: '3s' }).identity.providerTimeoutMs).toBe(3_000);
    expect(startError({ IDENTITY_PROVIDER_TIMEOUT: 'soon' })).toMatch(/^IDENTITY_PROVIDER_TIMEOUT/);
  });
});
