/** Emails and passwords as docs/contract.md section 3 measures them. */

export const PASSWORD_MIN_BYTES = 8;
export const PASSWORD_MAX_BYTES = 1024;

const LOCAL_MAX_BYTES = 64;
const EMAIL_MAX_BYTES = 254;
/** Whitespace, control characters and lone surrogates. */
const FORBIDDEN = /[\s\p{Cc}\p{Cs}]/u;

function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/**
 * The one form an address is stored and compared in: trimmed, NFC, lower-cased.
 * Null when it is not a plausible address: exactly one `@`, a local part of 1 to 64 bytes,
 * a domain with a dot between non-empty labels, at most 254 bytes in all, and no
 * whitespace or control characters inside.
 */
export function normalizeEmail(raw: string): string | null {
  // NFC again after lower-casing: a few characters lower-case into a decomposed sequence.
  const email = raw.trim().normalize('NFC').toLowerCase().normalize('NFC');
  if (FORBIDDEN.test(email) || utf8Bytes(email) > EMAIL_MAX_BYTES) return null;
  const parts = email.split('@');
  if (parts.length !== 2) return null;
  const [local = '', domain = ''] = parts;
  if (local === '' || utf8Bytes(local) > LOCAL_MAX_BYTES) return null;
  const labels = domain.split('.');
  if (labels.length < 2 || labels.some((label) => label === '')) return null;
  return email;
}

/** A password's length as docs/contract.md section 3 measures it: UTF-8 bytes after NFC. */
export function passwordBytes(password: string): number {
  return utf8Bytes(password.normalize('NFC'));
}

/** `signup` wants 8 to 1024 bytes. (`login` refuses only over PASSWORD_MAX_BYTES.) */
export function checkSignupPassword(password: string): 'ok' | 'too_short' | 'too_long' {
  const bytes = passwordBytes(password);
  if (bytes < PASSWORD_MIN_BYTES) return 'too_short';
  if (bytes > PASSWORD_MAX_BYTES) return 'too_long';
  return 'ok';
}
