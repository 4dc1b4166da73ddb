import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { fail } from '../settingValues.js';

/**
 * Sign-in with other identity providers (docs/contract.md section 9): the providers of
 * `IDENTITY_PROVIDERS_FILE` and the redirect URIs a flow may end at. Read once at start by
 * `readIdentitySettings`, called from `loadConfig`.
 */

export type ProviderKind = 'oidc' | 'github';

export interface ProviderSettings {
  /** The file's `id`: the path segment of `/auth/{id}/…` and `Identity.provider`. */
  id: string;
  kind: ProviderKind;
  /** oidc: where discovery starts (`/.well-known/openid-configuration` under it). */
  issuer: string | null;
  clientId: string;
  clientSecret: string;
  scopes: string[];
  /** Overrides of the discovered (oidc) or preset (github) endpoints. */
  authorizationUrl: string | null;
  tokenUrl: string | null;
  userInfoUrl: string | null;
  /** github: `/user/emails`. */
  emailsUrl: string | null;
}

export interface IdentitySettings {
  providers: ProviderSettings[];
  /** AUTH_REDIRECT_URIS: where a flow may end (exact match). */
  redirectUris: string[];
  /** IDENTITY_PROVIDER_TIMEOUT: how long one call to a provider may take. */
  providerTimeoutMs: number;
}

type Env = Record<string, string | undefined>;

const FIELDS = new Set([
  'id',
  'kind',
  'issuer',
  'clientId',
  'clientSecret',
  'scopes',
  'authorizationUrl',
  'tokenUrl',
  'userInfoUrl',
  'emailsUrl',
]);
const URL_FIELDS = ['issuer', 'authorizationUrl', 'tokenUrl', 'userInfoUrl', 'emailsUrl'] as const;
const PROVIDER_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const DEFAULT_SCOPES: Record<ProviderKind, string[]> = {
  oidc: ['openid', 'email', 'profile'],
  github: ['read:user', 'user:email'],
};


/**
 * `providerTimeoutMs` is read by the caller (loadConfig's duration reader), so this stays a
 * function of the environment and the working directory only.
 */
export function readIdentitySettings(env: Env, cwd: string, production: boolean, providerTimeoutMs: number): IdentitySettings {
  const file = env.IDENTITY_PROVIDERS_FILE?.trim() || undefined;
  const redirectUris = readRedirectUris(env.AUTH_REDIRECT_URIS, production);
  if (file === undefined) return { providers: [], redirectUris, providerTimeoutMs };
  const providers = readProvidersFile(path.resolve(cwd, file), production);
  if (providers.length > 0 && redirectUris.length === 0) {
    fail('AUTH_REDIRECT_URIS is required with IDENTITY_PROVIDERS_FILE (the exact URIs a sign-in may return to, comma-separated)');
  }
  return { providers, redirectUris, providerTimeoutMs };
}

function readRedirectUris(raw: string | undefined, production: boolean): string[] {
  if (raw === undefined || raw.trim() === '') return [];
  return raw.split(',').map((entry) => {
    const uri = entry.trim();
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      fail(`AUTH_REDIRECT_URIS: ${JSON.stringify(uri)} is not an absolute URL`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') fail(`AUTH_REDIRECT_URIS: ${JSON.stringify(uri)} is not an http(s) URL`);
    if (url.hash !== '' || uri.includes('#')) fail(`AUTH_REDIRECT_URIS: ${JSON.stringify(uri)} has a fragment`);
    if (production && url.protocol === 'http:' && !isLoopback(url.hostname)) {
      fail(`AUTH_REDIRECT_URIS: ${JSON.stringify(uri)} must be https in production`);
    }
    return uri;
  });
}

function readProvidersFile(file: string, production: boolean): ProviderSettings[] {
  const where = `IDENTITY_PROVIDERS_FILE (${file})`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    fail(`${where}: cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let parsed: unknown;
  try {
    // YAML is a superset of JSON: one parser reads both.
    parsed = parseYaml(text);
  } catch (error) {
    fail(`${where}: not valid JSON or YAML (${String((error as Error).message).split('\n')[0]})`);
  }
  if (!Array.isArray(parsed)) fail(`${where}: must be a list of providers`);
  const providers = parsed.map((entry, index) => readProvider(entry, `${where}: provider ${index + 1}`, production));
  const ids = new Set<string>();
  for (const provider of providers) {
    if (ids.has(provider.id)) fail(`${where}: the id ${JSON.stringify(provider.id)} appears twice`);
    ids.add(provider.id);
  }
  return providers;
}

function readProvider(entry: unknown, where: string, production: boolean): ProviderSettings {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) fail(`${where}: must be an object`);
  const fields = entry as Record<string, unknown>;
  for (const name of Object.keys(fields)) {
    if (!FIELDS.has(name)) fail(`${where}: unknown field ${JSON.stringify(name)} (known: ${[...FIELDS].join(', ')})`);
  }
  const id = requiredString(fields, 'id', where);
  if (!PROVIDER_ID.test(id)) fail(`${where}: id ${JSON.stringify(id)} must be lower-case letters, digits, - or _`);
  const named = `${where} (${id})`;
  const kind = requiredString(fields, 'kind', named);
  if (kind !== 'oidc' && kind !== 'github') fail(`${named}: kind ${JSON.stringify(kind)} is not one of oidc, github`);
  for (const name of URL_FIELDS) {
    const value = optionalString(fields, name, named);
    if (value === null) continue;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      fail(`${named}: ${name} ${JSON.stringify(value)} is not an absolute URL`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && !production)) {
      fail(`${named}: ${name} must be an https URL${production ? ' in production' : ''}`);
    }
  }
  const issuer = optionalString(fields, 'issuer', named);
  if (kind === 'oidc' && issuer === null) fail(`${named}: issuer is required for kind oidc (discovery starts there)`);
  let scopes = DEFAULT_SCOPES[kind];
  if (fields.scopes !== undefined) {
    if (!Array.isArray(fields.scopes) || !fields.scopes.every((s) => typeof s === 'string' && /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s))) {
      fail(`${named}: scopes must be a list of scope names`);
    }
    scopes = fields.scopes as string[];
    if (kind === 'oidc' && !scopes.includes('openid')) scopes = ['openid', ...scopes];
  }
  return {
    id,
    kind,
    issuer,
    clientId: requiredString(fields, 'clientId', named),
    clientSecret: requiredString(fields, 'clientSecret', named),
    scopes,
    authorizationUrl: optionalString(fields, 'authorizationUrl', named),
    tokenUrl: optionalString(fields, 'tokenUrl', named),
    userInfoUrl: optionalString(fields, 'userInfoUrl', named),
    emailsUrl: optionalString(fields, 'emailsUrl', named),
  };
}

function requiredString(fields: Record<string, unknown>, name: string, where: string): string {
  const value = fields[name];
  if (typeof value !== 'string' || value.trim() === '') fail(`${where}: ${name} is required (a string)`);
  return value.trim();
}

function optionalString(fields: Record<string, unknown>, name: string, where: string): string | null {
  const value = fields[name];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value.trim() === '') fail(`${where}: ${name} must be a non-empty string`);
  return value.trim();
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '127.0.0.1' || hostname === '[::1]';
}
