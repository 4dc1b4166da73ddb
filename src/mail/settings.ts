import { statSync } from 'node:fs';
import path from 'node:path';
import { parseDuration } from '../duration.js';
import { type Env, fail, read, show } from '../settingValues.js';
import { isWebhookSecret } from '../events/webhookSender.js';
import { loadTemplates, type MailTemplates, TemplateError } from './templates.js';
import type { SmtpSettings } from './transports/smtpTransport.js';
import type { MailWebhookSettings } from './transports/webhookTransport.js';

/** The kinds whose mail carries a token, and so a link built from a URL template. */
export const LINK_KINDS = ['password_reset', 'email_verification', 'email_change'] as const;
export type LinkKind = (typeof LINK_KINDS)[number];

export type MailTransportSettings =
  | { kind: 'log' }
  | { kind: 'smtp'; smtp: SmtpSettings }
  | { kind: 'webhook'; webhook: MailWebhookSettings };

/** Mail settings (docs/contract.md section 7 "Mail"), read by `readMailSettings` from loadConfig. */
export interface MailSettings {
  /** null: no transport (production without MAIL_TRANSPORT): the mail features answer FORBIDDEN FEATURE_DISABLED. */
  transport: MailTransportSettings | null;
  /** MAIL_FROM */
  from: string;
  /** MAIL_PRODUCT_NAME: `{{productName}}` in the templates. */
  productName: string;
  /** MAIL_TEMPLATES_DIR (resolved), or null: the built-in templates. */
  templatesDir: string | null;
  /** Every template, read at start (a replaced one checked then). */
  templates: MailTemplates;
  /** PASSWORD_RESET_URL, EMAIL_VERIFICATION_URL, EMAIL_CHANGE_URL: each contains `{token}`. */
  links: Readonly<Record<LinkKind, string>>;
  /** MAIL_SEND_TIMEOUT: how long one attempt may wait on the SMTP server or webhook (each step). */
  sendTimeoutMs: number;
}


/** The setting of each link template, and its path under the issuer outside production. */
const LINK_SETTINGS: Readonly<Record<LinkKind, { name: string; path: string }>> = {
  password_reset: { name: 'PASSWORD_RESET_URL', path: '/reset-password?token={token}' },
  email_verification: { name: 'EMAIL_VERIFICATION_URL', path: '/verify-email?token={token}' },
  email_change: { name: 'EMAIL_CHANGE_URL', path: '/confirm-email-change?token={token}' },
};

const TRANSPORTS = ['log', 'smtp', 'webhook'] as const;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const SPACE_OR_CONTROL = /[\s\p{Cc}]/u;


/**
 * MAIL_TRANSPORT (log | smtp | webhook; unset: smtp if SMTP_URL is set, webhook if
 * MAIL_WEBHOOK_URL is, else log outside production and none in production), SMTP_URL, SMTP_TLS,
 * MAIL_WEBHOOK_URL, MAIL_WEBHOOK_SECRET, MAIL_FROM, MAIL_PRODUCT_NAME, MAIL_TEMPLATES_DIR,
 * MAIL_SEND_TIMEOUT, and the link templates. Throws ConfigError (one line naming the variable).
 */
export function readMailSettings(env: Env, production: boolean, issuer: string, cwd: string = process.cwd()): MailSettings {
  const transport = readTransport(env, production);
  const productName = read(env, 'MAIL_PRODUCT_NAME') ?? 'Tessera';
  if (CONTROL.test(productName) || productName.length > 100) fail('MAIL_PRODUCT_NAME must be one line of at most 100 characters');
  const from = read(env, 'MAIL_FROM') ?? `"${productName.replace(/["\\]/g, '')}" <no-reply@${new URL(issuer).hostname.replace(/^\[|\]$/g, '') || 'localhost'}>`;
  if (CONTROL.test(from) || !/@[^@\s<>]+>?$/.test(from.trim()) || from.length > 320) {
    fail(`MAIL_FROM: ${show(from)} is not an address (e.g. no-reply@example.com or "Example" <no-reply@example.com>)`);
  }
  const links = Object.fromEntries(
    Object.entries(LINK_SETTINGS).map(([kind, setting]) => [kind, readLink(env, setting.name, setting.path, production && transport !== null, issuer)]),
  ) as Record<LinkKind, string>;
  const templatesDir = readTemplatesDir(env, cwd);
  let templates: MailTemplates;
  try {
    templates = loadTemplates(templatesDir);
  } catch (error) {
    if (error instanceof TemplateError) fail(`MAIL_TEMPLATES_DIR: ${error.message}`);
    throw error;
  }
  return { transport, from: from.trim(), productName, templatesDir, templates, links, sendTimeoutMs: readSendTimeout(env) };
}

function readTransport(env: Env, production: boolean): MailTransportSettings | null {
  const raw = read(env, 'MAIL_TRANSPORT')?.toLowerCase();
  if (raw !== undefined && !(TRANSPORTS as readonly string[]).includes(raw)) fail(`MAIL_TRANSPORT: ${show(raw)} is not one of ${TRANSPORTS.join(', ')}`);
  const kind = raw ?? (read(env, 'SMTP_URL') ? 'smtp' : read(env, 'MAIL_WEBHOOK_URL') ? 'webhook' : production ? null : 'log');
  switch (kind) {
    case null:
      return null;
    case 'log':
      if (production) {
        fail('MAIL_TRANSPORT=log is refused when NODE_ENV=production (it writes the links of reset and verification mails, which are credentials, to the log); use smtp or webhook');
      }
      return { kind: 'log' };
    case 'smtp':
      return { kind: 'smtp', smtp: readSmtp(env) };
    case 'webhook':
      return { kind: 'webhook', webhook: readWebhook(env) };
    default:
      return fail(`MAIL_TRANSPORT: ${show(kind)} is not one of ${TRANSPORTS.join(', ')}`);
  }
}

function readSmtp(env: Env): SmtpSettings {
  const url = read(env, 'SMTP_URL');
  // Never echoed: the URL carries the relay's password.
  if (url === undefined) fail('SMTP_URL is required with MAIL_TRANSPORT=smtp (e.g. smtp://user:password@smtp.example.com:587)');
  let parsed: URL | null = null;
  try {
    parsed = new URL(url);
  } catch {
    // reported below
  }
  if (!parsed || (parsed.protocol !== 'smtp:' && parsed.protocol !== 'smtps:') || parsed.hostname === '' || SPACE_OR_CONTROL.test(url)) {
    fail('SMTP_URL must be smtp://[user:password@]host[:port] or smtps://… (the password percent-encoded)');
  }
  const rawTls = read(env, 'SMTP_TLS')?.toLowerCase();
  if (rawTls !== undefined && rawTls !== 'starttls' && rawTls !== 'off') fail(`SMTP_TLS: ${show(rawTls)} is not one of starttls, off`);
  const tls = rawTls ?? 'starttls';
  if (parsed.protocol === 'smtps:' && tls === 'off') fail('SMTP_TLS=off contradicts an smtps:// SMTP_URL (TLS from the first byte); use smtp:// for a plaintext relay');
  return { url, tls };
}

function readWebhook(env: Env): MailWebhookSettings {
  const url = read(env, 'MAIL_WEBHOOK_URL');
  const secret = read(env, 'MAIL_WEBHOOK_SECRET');
  if (url === undefined) fail('MAIL_WEBHOOK_URL is required with MAIL_TRANSPORT=webhook (e.g. https://mailer.example.com/tessera)');
  if (!/^https?:\/\//.test(url) || !URL.canParse(url) || SPACE_OR_CONTROL.test(url)) {
    // Not echoed: a URL may carry credentials.
    fail('MAIL_WEBHOOK_URL is not an http(s) URL (e.g. https://mailer.example.com/tessera)');
  }
  if (secret === undefined) fail('MAIL_WEBHOOK_SECRET is required with MAIL_TRANSPORT=webhook (every delivery is signed)');
  if (!isWebhookSecret(secret)) {
    fail('MAIL_WEBHOOK_SECRET must be whsec_ followed by the base64 of 24 to 64 random bytes (e.g. whsec_$(openssl rand -base64 32))');
  }
  return { url, secret };
}

/** A link template: a URL containing `{token}`, not a script or data URL. Required in production when mail is on. */
function readLink(env: Env, name: string, defaultPath: string, required: boolean, issuer: string): string {
  const raw = read(env, name);
  if (raw === undefined) {
    if (required) fail(`${name} is required when NODE_ENV=production and mail is on (the link in the mail, e.g. https://app.example.com${defaultPath})`);
    return `${new URL(issuer).origin}${defaultPath}`;
  }
  if (!raw.includes('{token}')) fail(`${name}: ${show(raw)} must contain {token} (where the mail's token goes, e.g. https://app.example.com${defaultPath})`);
  const example = raw.replaceAll('{token}', 'token');
  let protocol = '';
  try {
    protocol = new URL(example).protocol;
  } catch {
    // reported below
  }
  if (protocol === '' || SPACE_OR_CONTROL.test(raw) || /^(javascript|data|vbscript|file):$/.test(protocol)) {
    fail(`${name}: ${show(raw)} is not a usable link (an absolute URL such as https://app.example.com${defaultPath})`);
  }
  return raw;
}

function readTemplatesDir(env: Env, cwd: string): string | null {
  const raw = read(env, 'MAIL_TEMPLATES_DIR');
  if (raw === undefined) return null;
  const dir = path.resolve(cwd, raw);
  let isDirectory = false;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch {
    // reported below
  }
  if (!isDirectory) fail(`MAIL_TEMPLATES_DIR: ${show(dir)} is not a folder (it holds <kind>.txt and <kind>.html files that replace the built-in ones)`);
  return dir;
}

function readSendTimeout(env: Env): number {
  const raw = read(env, 'MAIL_SEND_TIMEOUT');
  if (raw === undefined) return 10_000;
  const ms = parseDuration(raw);
  if (ms === null || ms < 1_000 || ms > 60_000) fail(`MAIL_SEND_TIMEOUT: ${show(raw)} must be a duration between 1s and 60s`);
  return ms;
}

/** The link of a mail: the kind's template with the token URL-encoded into it. */
export function buildLink(template: string, token: string): string {
  return template.replaceAll('{token}', encodeURIComponent(token));
}
