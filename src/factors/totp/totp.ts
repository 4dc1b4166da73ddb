import { Secret, TOTP } from 'otpauth';

/** qrcode, loaded on the first enrolment (it costs a couple of hundred ms at start otherwise). */
let qrcode: Promise<typeof import('qrcode')> | undefined;

/**
 * TOTP per RFC 6238 with `otpauth`: SHA-1, 6 digits, 30-second steps, a code of the step before
 * or after the current one accepted too (clock drift). The step a code belongs to is what the
 * store remembers, so a code accepted once is refused after (factors/store.ts `useFactor`).
 */
export const TOTP_PERIOD_SECONDS = 30;
export const TOTP_DIGITS = 6;
const WINDOW = 1;
const SECRET_BYTES = 20;

export interface TotpEnrollmentData {
  /** base32, as authenticator apps take it. */
  secret: string;
  otpauthUri: string;
  qrCodeSvg: string;
}

/** A new shared secret (160 bits, RFC 4226's recommendation), its `otpauth://` URI and QR code. */
export async function newTotpEnrollment(issuer: string, account: string): Promise<TotpEnrollmentData> {
  const secret = new Secret({ size: SECRET_BYTES }).base32;
  const otpauthUri = totpOf(secret, issuer, account).toString();
  // A CommonJS module: its exports are the namespace's `default` under Node.
  const module = (await (qrcode ??= import('qrcode'))) as typeof import('qrcode') & { default?: typeof import('qrcode') };
  const QRCode = module.default ?? module;
  const qrCodeSvg = await QRCode.toString(otpauthUri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  return { secret, otpauthUri, qrCodeSvg };
}

function totpOf(secret: string, issuer = '', label = ''): TOTP {
  return new TOTP({
    issuer,
    label,
    algorithm: 'SHA1',
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
    secret: Secret.fromBase32(secret),
  });
}

/** `123456` or `123 456`: six digits, spaces allowed. */
export function isTotpCode(code: string): boolean {
  return /^\d{6}$/.test(code.replace(/\s/g, ''));
}

/**
 * The time step `code` belongs to, among the current step and its neighbours; null when it is
 * none of them. `now` in epoch ms.
 */
export function matchTotpStep(secret: string, code: string, now: number): number | null {
  const token = code.replace(/\s/g, '');
  if (!/^\d{6}$/.test(token)) return null;
  const delta = totpOf(secret).validate({ token, timestamp: now, window: WINDOW });
  if (delta === null) return null;
  return Math.floor(now / 1000 / TOTP_PERIOD_SECONDS) + delta;
}
