import { createHmac } from 'node:crypto';
import { expect } from 'vitest';
import { AUTH_FIELDS, bearer, type TestServer } from '../helpers/testServer.js';

/**
 * TOTP computed here with node:crypto (RFC 4226 HOTP over RFC 6238 steps), not with the
 * server's library, so the server's arithmetic is checked rather than echoed.
 */
export function totpAt(base32Secret: string, epochMs: number, stepOffset = 0): string {
  const counter = Math.floor(epochMs / 1000 / 30) + stepOffset;
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const digest = createHmac('sha1', base32Decode(base32Secret)).update(message).digest();
  const offset = digest[digest.length - 1]! & 0x0f;
  const binary = (digest.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return binary.toString().padStart(6, '0');
}

function base32Decode(text: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of text.replace(/=+$/, '').toUpperCase()) {
    const value = alphabet.indexOf(c);
    if (value < 0) throw new Error(`not base32: ${c}`);
    bits += value.toString(2).padStart(5, '0');
  }
  const bytes: number[] = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

export const ENROLL = `mutation { enrollTotp { factorId secret otpauthUri qrCodeSvg } }`;
export const CONFIRM = `mutation($id: ID!, $code: String!) { confirmTotp(factorId: $id, code: $code) }`;
export const VERIFY = `mutation($t: String!, $code: String!) { verifyMfa(mfaToken: $t, code: $code) { ${AUTH_FIELDS} } }`;
export const FACTORS = `{ factors { id kind name createdAt lastUsedAt } }`;
export const REMOVE = `mutation($id: ID!) { removeFactor(id: $id) }`;

/** Enrols and confirms TOTP for the signed-in `accessToken`; the secret and the recovery codes. */
export async function enrollTotp(server: TestServer, accessToken: string, now: number) {
  const enrolled = await server.graphql(ENROLL, {}, bearer(accessToken));
  expect(enrolled.errors).toEqual([]);
  const { factorId, secret } = enrolled.data!.enrollTotp as { factorId: string; secret: string };
  const confirmed = await server.graphql(CONFIRM, { id: factorId, code: totpAt(secret, now) }, bearer(accessToken));
  expect(confirmed.errors).toEqual([]);
  return { factorId, secret, recoveryCodes: confirmed.data!.confirmTotp as string[] };
}

/** The first error's code and reason. */
export function failure(answer: { errors: { extensions: Record<string, unknown> }[] }) {
  const e = answer.errors[0]?.extensions ?? {};
  return { code: e.code, reason: e.reason };
}
