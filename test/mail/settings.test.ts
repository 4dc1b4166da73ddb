import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { buildLink } from '../../src/mail/settings.js';
import { render } from '../../src/mail/templates.js';
import { webhookSecret } from '../helpers/webhookReceiver.js';

const PRODUCTION = { NODE_ENV: 'production', REDIS_URL: 'redis://redis:6379', SIGNING_KEYS: '/run/secrets/keys.json' };
const LINKS = {
  PASSWORD_RESET_URL: 'https://app.example.com/reset?token={token}',
  EMAIL_VERIFICATION_URL: 'https://app.example.com/verify?token={token}',
  EMAIL_CHANGE_URL: 'https://app.example.com/change?token={token}',
};

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-mail-templates-'));
  dirs.push(dir);
  for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), body);
  return dir;
}

/** The one-line start error for these settings. */
function refusal(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error('the settings were accepted');
}

describe('MAIL_TRANSPORT', () => {
  it('defaults to log outside production, and to none (mail off) in production', () => {
    expect(loadConfig({}).mail.transport).toEqual({ kind: 'log' });
    expect(loadConfig(PRODUCTION).mail.transport).toBeNull();
  });

  it('production refuses log, with a line that says why', () => {
    expect(refusal({ ...PRODUCTION, MAIL_TRANSPORT: 'log' })).toMatch(/^MAIL_TRANSPORT=log is refused when NODE_ENV=production/);
  });

  it('smtp: SMTP_URL required, smtp:// or smtps://, never echoed; SMTP_TLS starttls by default', () => {
    expect(loadConfig({ MAIL_TRANSPORT: 'smtp', SMTP_URL: 'smtp://u:p@mail.example.com:587' }).mail.transport).toEqual({
      kind: 'smtp',
      smtp: { url: 'smtp://u:p@mail.example.com:587', tls: 'starttls' },
    });
    expect(loadConfig({ SMTP_URL: 'smtps://mail.example.com', SMTP_TLS: 'STARTTLS' }).mail.transport).toMatchObject({ kind: 'smtp' });
    expect(loadConfig({ MAIL_TRANSPORT: 'smtp', SMTP_URL: 'smtp://relay:1025', SMTP_TLS: 'off' }).mail.transport).toMatchObject({ smtp: { tls: 'off' } });
    expect(refusal({ MAIL_TRANSPORT: 'smtp' })).toMatch(/^SMTP_URL is required with MAIL_TRANSPORT=smtp/);
    const bad = refusal({ MAIL_TRANSPORT: 'smtp', SMTP_URL: 'http://user:hunter2@mail.example.com' });
    expect(bad).toMatch(/^SMTP_URL must be smtp:\/\//);
    expect(bad).not.toContain('hunter2');
    expect(refusal({ SMTP_URL: 'smtps://mail.example.com', SMTP_TLS: 'off' })).toMatch(/^SMTP_TLS=off contradicts an smtps:\/\//);
    expect(refusal({ SMTP_URL: 'smtp://mail.example.com', SMTP_TLS: 'maybe' })).toMatch(/^SMTP_TLS: "maybe" is not one of starttls, off/);
    expect(refusal({ MAIL_TRANSPORT: 'pigeon' })).toMatch(/^MAIL_TRANSPORT: "pigeon" is not one of log, smtp, webhook/);
  });

  it('webhook: an http(s) MAIL_WEBHOOK_URL and a whsec_ MAIL_WEBHOOK_SECRET, never echoed', () => {
    const secret = webhookSecret();
    expect(loadConfig({ MAIL_TRANSPORT: 'webhook', MAIL_WEBHOOK_URL: 'https://hooks.example.com/mail', MAIL_WEBHOOK_SECRET: secret }).mail.transport).toEqual({
      kind: 'webhook',
      webhook: { url: 'https://hooks.example.com/mail', secret },
    });
    expect(refusal({ MAIL_TRANSPORT: 'webhook', MAIL_WEBHOOK_SECRET: secret })).toMatch(/^MAIL_WEBHOOK_URL is required/);
    expect(refusal({ MAIL_WEBHOOK_URL: 'ftp://hooks.example.com', MAIL_WEBHOOK_SECRET: secret })).toMatch(/^MAIL_WEBHOOK_URL is not an http\(s\) URL/);
    expect(refusal({ MAIL_WEBHOOK_URL: 'https://hooks.example.com' })).toMatch(/^MAIL_WEBHOOK_SECRET is required/);
    const weak = refusal({ MAIL_WEBHOOK_URL: 'https://hooks.example.com', MAIL_WEBHOOK_SECRET: 'whsec_c2hvcnQ=' });
    expect(weak).toMatch(/^MAIL_WEBHOOK_SECRET must be whsec_/);
    expect(weak).not.toContain('c2hvcnQ');
  });

  it('production with a transport needs the three link templates', () => {
    const smtp = { ...PRODUCTION, SMTP_URL: 'smtps://mail.example.com' };
    expect(refusal(smtp)).toMatch(/^PASSWORD_RESET_URL is required when NODE_ENV=production and mail is on/);
    expect(loadConfig({ ...smtp, ...LINKS }).mail.links).toEqual({
      password_reset: LINKS.PASSWORD_RESET_URL,
      email_verification: LINKS.EMAIL_VERIFICATION_URL,
      email_change: LINKS.EMAIL_CHANGE_URL,
    });
  });
});

describe('link templates', () => {
  it('default outside production to pages under AUTH_ISSUER', () => {
    expect(loadConfig({ AUTH_ISSUER: 'https://auth.example.com/base' }).mail.links).toEqual({
      password_reset: 'https://auth.example.com/reset-password?token={token}',
      email_verification: 'https://auth.example.com/verify-email?token={token}',
      email_change: 'https://auth.example.com/confirm-email-change?token={token}',
    });
  });

  it('must contain {token} and be a usable link', () => {
    expect(refusal({ PASSWORD_RESET_URL: 'https://app.example.com/reset' })).toMatch(/^PASSWORD_RESET_URL: "https:\/\/app.example.com\/reset" must contain \{token\}/);
    expect(refusal({ EMAIL_CHANGE_URL: 'javascript:alert({token})' })).toMatch(/^EMAIL_CHANGE_URL: .* is not a usable link/);
    expect(refusal({ EMAIL_VERIFICATION_URL: '/verify?token={token}' })).toMatch(/^EMAIL_VERIFICATION_URL: .* is not a usable link/);
    expect(loadConfig({ EMAIL_VERIFICATION_URL: 'myapp://verify/{token}' }).mail.links.email_verification).toBe('myapp://verify/{token}');
  });

  it('the token goes in URL-encoded', () => {
    expect(buildLink('https://app.example.com/r?token={token}', 'a b&c=d/é')).toBe('https://app.example.com/r?token=a%20b%26c%3Dd%2F%C3%A9');
  });
});

describe('MAIL_FROM, MAIL_PRODUCT_NAME, MAIL_SEND_TIMEOUT', () => {
  it('default the sender to no-reply at the issuer host, named after the product', () => {
    expect(loadConfig({ AUTH_ISSUER: 'https://auth.example.com', MAIL_PRODUCT_NAME: 'Acme' }).mail).toMatchObject({ from: '"Acme" <no-reply@auth.example.com>', productName: 'Acme' });
    expect(loadConfig({ MAIL_FROM: 'Acme Accounts <accounts@acme.test>' }).mail.from).toBe('Acme Accounts <accounts@acme.test>');
  });

  it('refuse a sender that is not an address or spans lines, a product name over a line, a timeout out of bounds', () => {
    expect(refusal({ MAIL_FROM: 'nobody' })).toMatch(/^MAIL_FROM: "nobody" is not an address/);
    expect(refusal({ MAIL_FROM: 'a@b.test\r\nBcc: x@y.test' })).toMatch(/^MAIL_FROM: /);
    expect(refusal({ MAIL_PRODUCT_NAME: 'Acme\nBcc: x' })).toMatch(/^MAIL_PRODUCT_NAME must be one line/);
    expect(refusal({ MAIL_SEND_TIMEOUT: '5m' })).toMatch(/^MAIL_SEND_TIMEOUT: "5m" must be a duration between 1s and 60s/);
    expect(loadConfig({ MAIL_SEND_TIMEOUT: '30s' }).mail.sendTimeoutMs).toBe(30_000);
  });
});

describe('MAIL_TEMPLATES_DIR', () => {
  it('replaces a template file by file; a file missing there falls back to the built-in one', () => {
    const dir = folder({
      'password_reset.txt': 'Subject: {{productName}}: new password\n\nGo to {{link}} now.\n',
      'password_reset.html': '<p><a href="{{link}}">{{productName}}</a></p>',
    });
    const { templates } = loadConfig({ MAIL_TEMPLATES_DIR: dir, MAIL_PRODUCT_NAME: 'A&B' }).mail;
    expect(templates.password_reset).toEqual({ subject: '{{productName}}: new password', text: 'Go to {{link}} now.\n', html: '<p><a href="{{link}}">{{productName}}</a></p>' });
    expect(templates.email_verification.subject).toBe('Confirm your email address for {{productName}}');
    const rendered = render(templates.password_reset, { productName: 'A&B', link: 'https://x.test/?a=1&token=t' });
    expect(rendered).toEqual({
      subject: 'A&B: new password',
      text: 'Go to https://x.test/?a=1&token=t now.\n',
      html: '<p><a href="https://x.test/?a=1&amp;token=t">A&amp;B</a></p>',
    });
  });

  it('refuses a folder that does not exist, and a replaced template without a subject or without the link', () => {
    expect(refusal({ MAIL_TEMPLATES_DIR: '/nonexistent/tessera-templates' })).toMatch(/^MAIL_TEMPLATES_DIR: "\/nonexistent\/tessera-templates" is not a folder/);
    expect(refusal({ MAIL_TEMPLATES_DIR: folder({ 'new_sign_in.txt': 'Hello\n' }) })).toMatch(/^MAIL_TEMPLATES_DIR: new_sign_in.txt must start with a "Subject: …" line/);
    expect(refusal({ MAIL_TEMPLATES_DIR: folder({ 'email_verification.html': '<p>Welcome</p>' }) })).toMatch(/^MAIL_TEMPLATES_DIR: email_verification.html must contain \{\{link\}\}/);
  });
});
