import { ConfigError } from '../errors.js';

/** Second-factor settings (docs/contract.md section 8), read once at start by loadConfig. */
export interface FactorSettings {
  /** WEBAUTHN_RP_ID: the passkeys' relying party id (a registrable domain of the origins). */
  rpId: string;
  /** WEBAUTHN_ORIGINS: the exact origins the browser's ceremonies may come from. */
  origins: string[];
}

/**
 * WEBAUTHN_RP_ID (default: AUTH_ISSUER's host) and WEBAUTHN_ORIGINS (comma-separated; default:
 * AUTH_ISSUER's origin). Each origin's host must be the RP ID or a subdomain of it, as browsers
 * require, so a setting that could never work stops the start.
 */
export function readFactorSettings(env: Readonly<Record<string, string | undefined>>, issuer: string): FactorSettings {
  const issuerUrl = new URL(issuer);
  const rawRp = env.WEBAUTHN_RP_ID || undefined;
  const rpId = (rawRp ?? issuerUrl.hostname).toLowerCase();
  if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(rpId) || rpId.includes('..')) {
    throw new ConfigError(`WEBAUTHN_RP_ID: ${JSON.stringify(rawRp ?? rpId)} is not a domain name (e.g. example.com)`);
  }
  const rawOrigins = env.WEBAUTHN_ORIGINS || undefined;
  const origins = (rawOrigins ?? issuerUrl.origin).split(',').map((o) => o.trim()).filter(Boolean);
  if (origins.length === 0) throw new ConfigError('WEBAUTHN_ORIGINS: no origin given (e.g. https://app.example.com)');
  for (const origin of origins) {
    let url: URL | null = null;
    try {
      url = new URL(origin);
    } catch {
      // reported below
    }
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.origin !== origin) {
      throw new ConfigError(`WEBAUTHN_ORIGINS: ${JSON.stringify(origin)} is not an origin (scheme://host[:port], no path)`);
    }
    if (url.hostname !== rpId && !url.hostname.endsWith(`.${rpId}`)) {
      throw new ConfigError(`WEBAUTHN_ORIGINS: ${JSON.stringify(origin)} is not on WEBAUTHN_RP_ID ${JSON.stringify(rpId)} or a subdomain of it`);
    }
  }
  return { rpId, origins };
}
