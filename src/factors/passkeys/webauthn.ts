import { TesseraError, ErrorCode, withReason } from '../../errors.js';
import type { FactorRecord, PasskeyData } from '../store.js';

/**
 * Passkeys per WebAuthn Level 2 with `@simplewebauthn/server`: the options a browser passes to
 * `navigator.credentials.create/get` (as JSON: `PublicKeyCredential.parse…OptionsFromJSON`), and
 * the checks of what it sends back (challenge, origin, RP ID, signature, counter, user
 * verification). Challenges are made here and kept, single use, by the FactorService's store.
 */

/** @simplewebauthn/server, loaded on the first ceremony (it costs a few hundred ms at start otherwise). */
let library: Promise<typeof import('@simplewebauthn/server')> | undefined;
const simpleWebAuthn = () => (library ??= import('@simplewebauthn/server'));

export interface RelyingParty {
  /** WEBAUTHN_RP_ID (default: AUTH_ISSUER's host). */
  id: string;
  name: string;
  /** WEBAUTHN_ORIGINS (default: AUTH_ISSUER's origin). */
  origins: string[];
}

/** A browser's answer, checked for shape only (the library checks the rest). */
export interface CredentialJson {
  id: string;
  rawId: string;
  type: 'public-key';
  response: Record<string, unknown>;
  clientExtensionResults: Record<string, unknown>;
  authenticatorAttachment?: string;
}

const MAX_RESPONSE_CHARS = 64 * 1024;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

function malformed(): TesseraError {
  return withReason(ErrorCode.BAD_USER_INPUT, 'PASSKEY_RESPONSE_MALFORMED');
}

function isBase64url(value: unknown, max = MAX_RESPONSE_CHARS): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= max && BASE64URL.test(value);
}

/**
 * The response's shape, and the challenge its clientDataJSON names (so the store can spend it
 * before anything is verified). BAD_USER_INPUT PASSKEY_RESPONSE_MALFORMED for anything else.
 */
export function parseCredential(value: unknown, kind: 'registration' | 'authentication'): { credential: CredentialJson; challenge: string } {
  let json: string;
  try {
    json = JSON.stringify(value) ?? '';
  } catch {
    throw malformed();
  }
  if (json.length > MAX_RESPONSE_CHARS || typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed();
  const v = value as Record<string, unknown>;
  const response = v.response;
  if (!isBase64url(v.id, 1400) || !isBase64url(v.rawId, 1400) || v.type !== 'public-key') throw malformed();
  if (typeof response !== 'object' || response === null || Array.isArray(response)) throw malformed();
  const r = response as Record<string, unknown>;
  const needed = kind === 'registration' ? ['clientDataJSON', 'attestationObject'] : ['clientDataJSON', 'authenticatorData', 'signature'];
  for (const field of needed) if (!isBase64url(r[field])) throw malformed();
  if (r.userHandle !== undefined && r.userHandle !== null && !isBase64url(r.userHandle, 100)) throw malformed();
  let clientData: unknown;
  try {
    clientData = JSON.parse(Buffer.from(r.clientDataJSON as string, 'base64url').toString('utf8'));
  } catch {
    throw malformed();
  }
  const challenge = (clientData as { challenge?: unknown } | null)?.challenge;
  if (!isBase64url(challenge, 200)) throw malformed();
  const extensions = v.clientExtensionResults;
  const credential: CredentialJson = {
    id: v.id,
    rawId: v.rawId as string,
    type: 'public-key',
    response: r,
    clientExtensionResults: typeof extensions === 'object' && extensions !== null && !Array.isArray(extensions) ? (extensions as Record<string, unknown>) : {},
    ...(typeof v.authenticatorAttachment === 'string' ? { authenticatorAttachment: v.authenticatorAttachment } : {}),
  };
  return { credential, challenge };
}

/** The WebAuthn user handle of a user: the bytes of the user's id (so a discoverable credential says whose it is). */
export function userHandleOf(userId: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.from(userId, 'utf8'));
}

/** The user id a discoverable credential's `userHandle` names, or null. */
export function userIdOfHandle(credential: CredentialJson): string | null {
  const handle = credential.response.userHandle;
  return typeof handle === 'string' ? Buffer.from(handle, 'base64url').toString('utf8') : null;
}

export async function registrationOptions(rp: RelyingParty, user: { id: string; email: string }, existing: readonly FactorRecord[]) {
  const { generateRegistrationOptions } = await simpleWebAuthn();
  return generateRegistrationOptions({
    rpName: rp.name,
    rpID: rp.id,
    userID: userHandleOf(user.id),
    userName: user.email,
    userDisplayName: user.email,
    attestationType: 'none',
    timeout: 300_000,
    excludeCredentials: existing.flatMap((f) => (f.passkey ? [{ id: f.passkey.credentialId, transports: transportsOf(f.passkey) }] : [])),
    // Discoverable, so the passkey also signs in without a password; verification asked for, not demanded.
    authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
  });
}

/** The passkey a registration response proves, or PASSKEY_INVALID (BAD_USER_INPUT: the caller is signed in). */
export async function verifyRegistration(
  rp: RelyingParty,
  credential: CredentialJson,
  expectedChallenge: string,
): Promise<{ passkey: PasskeyData; counter: number }> {
  const { verifyRegistrationResponse } = await simpleWebAuthn();
  let result;
  try {
    result = await verifyRegistrationResponse({
      response: credential as never,
      expectedChallenge,
      expectedOrigin: rp.origins,
      expectedRPID: rp.id,
      requireUserVerification: false,
    });
  } catch {
    throw withReason(ErrorCode.BAD_USER_INPUT, 'PASSKEY_INVALID');
  }
  if (!result.verified || !result.registrationInfo) throw withReason(ErrorCode.BAD_USER_INPUT, 'PASSKEY_INVALID');
  const info = result.registrationInfo;
  return {
    passkey: {
      credentialId: info.credential.id,
      publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
      transports: [...(info.credential.transports ?? [])],
      deviceType: info.credentialDeviceType,
      backedUp: info.credentialBackedUp,
    },
    counter: info.credential.counter,
  };
}

export async function authenticationOptions(rp: RelyingParty, allow: readonly FactorRecord[] | null, userVerification: 'required' | 'preferred') {
  const { generateAuthenticationOptions } = await simpleWebAuthn();
  return generateAuthenticationOptions({
    rpID: rp.id,
    timeout: 300_000,
    userVerification,
    ...(allow ? { allowCredentials: allow.flatMap((f) => (f.passkey ? [{ id: f.passkey.credentialId, transports: transportsOf(f.passkey) }] : [])) } : {}),
  });
}

/** The new signature counter an assertion proves, or null when it does not verify. */
export async function verifyAssertion(
  rp: RelyingParty,
  credential: CredentialJson,
  expectedChallenge: string,
  factor: FactorRecord,
  requireUserVerification: boolean,
): Promise<number | null> {
  const passkey = factor.passkey!;
  const { verifyAuthenticationResponse } = await simpleWebAuthn();
  try {
    const result = await verifyAuthenticationResponse({
      response: credential as never,
      expectedChallenge,
      expectedOrigin: rp.origins,
      expectedRPID: rp.id,
      credential: {
        id: passkey.credentialId,
        publicKey: new Uint8Array(Buffer.from(passkey.publicKey, 'base64url')),
        counter: factor.counter,
        transports: transportsOf(passkey),
      },
      requireUserVerification,
    });
    return result.verified ? result.authenticationInfo.newCounter : null;
  } catch {
    return null;
  }
}

type Transport = 'ble' | 'cable' | 'hybrid' | 'internal' | 'nfc' | 'smart-card' | 'usb';
const TRANSPORTS = new Set<string>(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb']);

function transportsOf(passkey: PasskeyData): Transport[] {
  return passkey.transports.filter((t): t is Transport => TRANSPORTS.has(t));
}

/** RFC 8176: `hwk` for a key bound to its device, `swk` for a synced (multi-device) one. */
export function amrOfPasskey(passkey: PasskeyData): 'hwk' | 'swk' {
  return passkey.deviceType === 'multiDevice' ? 'swk' : 'hwk';
}
