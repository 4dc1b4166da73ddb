import { ID_PATTERN } from '../ids.js';
import { pooledRandomBytes, type RandomBytes } from '../random.js';
import { canonicalBase64url, hashSecret, OpaqueTokenTagger } from './refreshTokens.js';

/**
 * The tokens mail links carry (docs/contract.md section 7): password reset, email verification,
 * email change. Opaque, 256 random bits, HMAC-tagged like refresh tokens (OpaqueTokenTagger, the
 * one tagging rule) so a forged or damaged token is refused before any store round trip; the
 * store keeps only `hashSecret(secret)` with a TTL, one per user and kind (the newest wins).
 *
 *   `m1.<kind>.<userId>.<secret>.<tag>`  (the `m1` prefix keeps the tag domain apart from refresh tokens')
 */
export const MAIL_TOKEN_KINDS = ['reset', 'verify', 'change'] as const;
export type MailTokenKind = (typeof MAIL_TOKEN_KINDS)[number];

export interface MailTokenParts {
  kind: MailTokenKind;
  userId: string;
  secret: Buffer;
}

const SECRET_BYTES = 32;
const MAX_TOKEN_LENGTH = 200;
const PREFIX = 'm1';

export class MailTokenCodec {
  private readonly tagger: OpaqueTokenTagger;

  constructor(
    tagKeys: Buffer[],
    private readonly random: RandomBytes = pooledRandomBytes,
  ) {
    this.tagger = new OpaqueTokenTagger(tagKeys);
  }

  /** A new token for the user, and the hash the store keeps of it. */
  issue(kind: MailTokenKind, userId: string): { token: string; secretHash: string } {
    if (!ID_PATTERN.test(userId)) throw new RangeError('not a user id');
    const secret = this.random(SECRET_BYTES);
    const body = `${PREFIX}.${kind}.${userId}.${secret.toString('base64url')}`;
    return { token: `${body}.${this.tagger.tag(body)}`, secretHash: hashSecret(secret) };
  }

  /** The parts of a token of `kind` this gateway issued; null for anything else (forged, truncated, huge, of another kind). */
  decode(token: unknown, kind: MailTokenKind): (MailTokenParts & { secretHash: string }) | null {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return null;
    const fields = token.split('.');
    if (fields.length !== 5) return null;
    const [prefix, tokenKind, userId = '', secretText = '', tagText = ''] = fields;
    if (prefix !== PREFIX || tokenKind !== kind || !ID_PATTERN.test(userId)) return null;
    const secret = canonicalBase64url(secretText, SECRET_BYTES);
    if (!secret) return null;
    const body = token.slice(0, token.length - tagText.length - 1);
    if (!this.tagger.matches(body, tagText)) return null;
    return { kind, userId, secret, secretHash: hashSecret(secret) };
  }

  /**
   * The same work as issuing, thrown away: a request for an unknown email costs what a known
   * one costs (random bytes, the HMAC, the hash).
   */
  dummy(): void {
    this.issue('reset', 'AAAAAAAAAAAAAAAAAAAAAA');
  }
}
