import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Mail bodies from template files: `<name>.txt` (first line `Subject: …`, a blank line, the text
 * body) and `<name>.html`, one pair per template name. The built-in ones ship in the package
 * (`dist/mail/templates/`); MAIL_TEMPLATES_DIR replaces any of them file by file (a file missing
 * there falls back to the built-in one).
 *
 * Placeholders are `{{name}}`: `productName`, `link`, `email` (the recipient), and the request's
 * `details` (`newEmail`, `time`, `ip`, `userAgent` …); an unknown name renders as nothing. Values
 * are HTML-escaped in the HTML body; control characters (line breaks included) become spaces,
 * so a value (a user agent, say) cannot add lines to a text body or headers to the subject.
 */

/** One template per kind, and the notice sent to the old address on an email change. */
export const TEMPLATE_NAMES = [
  'password_reset',
  'email_verification',
  'email_change',
  'email_change_notice',
  'password_changed',
  'new_sign_in',
] as const;
export type TemplateName = (typeof TEMPLATE_NAMES)[number];

/** The templates whose mail is useless without its link: a replacement must contain `{{link}}`. */
const NEEDS_LINK: ReadonlySet<TemplateName> = new Set(['password_reset', 'email_verification', 'email_change']);

export interface MailTemplate {
  subject: string;
  text: string;
  html: string;
}

export type MailTemplates = Readonly<Record<TemplateName, MailTemplate>>;

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

/** Where the built-in templates are, beside this module (src/mail/templates in the sources, dist/mail/templates built). */
export const BUILT_IN_TEMPLATES_DIR = fileURLToPath(new URL('./templates/', import.meta.url));

/** A template file that cannot be used; the message names the file. */
export class TemplateError extends Error {}

/**
 * Reads every template once (at start): from `dir` where it has the file, else the built-in one.
 * Throws TemplateError naming the file that is unusable.
 */
export function loadTemplates(dir: string | null): MailTemplates {
  const pick = (file: string): string => {
    const replaced = dir === null ? null : join(dir, file);
    const path = replaced !== null && existsSync(replaced) ? replaced : join(BUILT_IN_TEMPLATES_DIR, file);
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      throw new TemplateError(`${path}: cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  const entries = TEMPLATE_NAMES.map((name): [TemplateName, MailTemplate] => {
    const textFile = pick(`${name}.txt`);
    const html = pick(`${name}.html`);
    const match = /^Subject:[ \t]*(.*?)[ \t]*\r?\n(?:\r?\n)?([\s\S]*)$/.exec(textFile);
    if (!match || match[1] === '') {
      throw new TemplateError(`${name}.txt must start with a "Subject: …" line, then a blank line, then the text body`);
    }
    const template = { subject: match[1]!, text: match[2]!, html };
    if (NEEDS_LINK.has(name)) {
      for (const [part, body] of [['txt', template.text], ['html', template.html]] as const) {
        if (!body.includes('{{link}}')) throw new TemplateError(`${name}.${part} must contain {{link}} (the mail is useless without it)`);
      }
    }
    return [name, template];
  });
  return Object.fromEntries(entries) as Record<TemplateName, MailTemplate>;
}

const PLACEHOLDER = /\{\{\s*([A-Za-z][A-Za-z0-9_]*)\s*\}\}/g;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g;
const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

function fill(template: string, values: Readonly<Record<string, string>>, escape: (value: string) => string): string {
  return template.replace(PLACEHOLDER, (_, name: string) => {
    const value = Object.hasOwn(values, name) ? values[name]! : '';
    return escape(value.replace(CONTROL, ' '));
  });
}

/** The subject, text and HTML of one mail, values filled in. */
export function render(template: MailTemplate, values: Readonly<Record<string, string>>): RenderedMail {
  return {
    subject: fill(template.subject, values, (v) => v).replace(CONTROL, ' ').trim(),
    text: fill(template.text, values, (v) => v),
    html: fill(template.html, values, escapeHtml),
  };
}
