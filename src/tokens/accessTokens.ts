import { SignJWT, errors, jwtVerify, type CompactJWSHeaderParameters, type CryptoKey, type JWTPayload } from 'jose';
import type { Clock } from '../clock.js';
import { newId } from '../ids.js';
import type { KeySet, SigningKey } from './keys.js';
import type {
  AccessTokenClaims,
  AccessTokenVerification,
  IssueAccessTokenInput,
  IssuedAccessToken,
  PublicJwk,
  SigningAlgorithm,
} from './types.js';

export interface AccessTokenServiceOptions {
  keys: KeySet;
  issuer: string;
  audience: string;
  ttlMs: number;
  /** Leeway for exp, nbf and iat; at most 60 (contract 3.1). */
  clockToleranceSec: number;
  clock: Clock;
  newJti?: () => string;
}

export const ACCESS_TOKEN_TYP = 'at+jwt';
const ALGORITHMS: SigningAlgorithm[] = ['EdDSA', 'ES256'];
const REQUIRED_CLAIMS = ['iss', 'aud', 'sub', 'sid', 'jti', 'iat', 'exp', 'roles', 'scope'];
/** Far above any token we issue; refuses huge inputs before any parsing. */
const MAX_TOKEN_LENGTH = 8192;
const INVALID: AccessTokenVerification = { ok: false, reason: 'TOKEN_INVALID' };
const EXPIRED: AccessTokenVerification = { ok: false, reason: 'TOKEN_EXPIRED' };

/** Issues and verifies access tokens (contract 3.1). Keys are imported once, looked up by kid. */
export class AccessTokenService {
  private readonly byKid: Map<string, SigningKey>;
  private readonly newJti: () => string;

  constructor(private readonly options: AccessTokenServiceOptions) {
    const tolerance = options.clockToleranceSec;
    if (!(tolerance >= 0 && tolerance <= 60)) throw new RangeError('clockToleranceSec must be 0 to 60');
    this.byKid = new Map(options.keys.keys.map((key) => [key.kid, key]));
    this.newJti = options.newJti ?? (() => newId());
  }

  async issue(input: IssueAccessTokenInput): Promise<IssuedAccessToken> {
    const { keys, issuer, audience, ttlMs, clock } = this.options;
    const nowMs = clock.now();
    const iat = Math.floor(nowMs / 1000);
    const exp = Math.floor(Math.min(nowMs + ttlMs, input.notAfter ?? Infinity) / 1000);
    const roles = [...input.roles];
    const token = await new SignJWT({ sid: input.sessionId, roles, scope: input.scope ?? roles.join(' ') })
      .setProtectedHeader({ alg: keys.active.alg, kid: keys.active.kid, typ: ACCESS_TOKEN_TYP })
      .setIssuer(issuer)
      .setAudience(audience)
      .setSubject(input.userId)
      .setJti(this.newJti())
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(keys.active.privateKey);
    return { token, expiresAt: exp * 1000, expiresIn: Math.max(0, exp - iat) };
  }

  /** Never throws: a bad token is TOKEN_INVALID, a genuine but expired one TOKEN_EXPIRED. */
  async verify(token: string): Promise<AccessTokenVerification> {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return INVALID;
    const now = new Date(this.options.clock.now());
    try {
      const { payload } = await jwtVerify(token, this.resolveKey, {
        algorithms: ALGORITHMS,
        issuer: this.options.issuer,
        audience: this.options.audience,
        typ: ACCESS_TOKEN_TYP,
        clockTolerance: this.options.clockToleranceSec,
        currentDate: now,
        requiredClaims: REQUIRED_CLAIMS,
      });
      const claims = this.checkClaims(payload, Math.floor(now.getTime() / 1000));
      return claims ? { ok: true, claims } : INVALID;
    } catch (err) {
      return err instanceof errors.JWTExpired ? EXPIRED : INVALID;
    }
  }

  /** What /.well-known/jwks.json serves: public parts only. */
  jwks(): { keys: PublicJwk[] } {
    return { keys: this.options.keys.publicJwks() };
  }

  /** Requires a known kid, no crit, and the alg that key was made for. */
  private readonly resolveKey = (header: CompactJWSHeaderParameters): CryptoKey => {
    if (Object.hasOwn(header, 'crit')) throw new Error('crit header refused');
    const key = typeof header.kid === 'string' ? this.byKid.get(header.kid) : undefined;
    if (!key || header.alg !== key.alg) throw new Error('no key for this kid and alg');
    return key.publicKey;
  };

  /** What jose leaves to us: the types of every claim, an exact aud, and iat not in the future. */
  private checkClaims(payload: JWTPayload, nowSec: number): AccessTokenClaims | null {
    const { iss, aud, sub, sid, jti, iat, exp, roles, scope } = payload;
    if (typeof iat !== 'number' || !Number.isFinite(iat)) return null;
    if (iat > nowSec + this.options.clockToleranceSec) return null;
    if (typeof exp !== 'number' || !Number.isFinite(exp)) return null;
    if (iss !== this.options.issuer || aud !== this.options.audience) return null;
    if (!isNonEmptyString(sub) || !isNonEmptyString(sid) || !isNonEmptyString(jti)) return null;
    if (!isStringArray(roles) || typeof scope !== 'string') return null;
    return { iss, aud, sub, sid, jti, iat, exp, roles: [...roles], scope };
  }
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}
