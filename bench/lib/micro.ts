import { createPublicKey, type JsonWebKey, verify as cryptoVerify } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { jwtVerify } from 'jose';
import { Bench } from 'tinybench';
import { systemClock } from '../../src/clock.js';
import { ACCESS_TOKEN_TYP, AccessTokenService } from '../../src/tokens/accessTokens.js';
import { generateSigningJwk, keySetJson, parseKeySet } from '../../src/tokens/keys.js';
import type { SigningAlgorithm } from '../../src/tokens/types.js';

export interface VerifyFigures {
  alg: SigningAlgorithm;
  /** Operations per second, one at a time. */
  opsPerSec: Record<VerifyTask, number>;
  /** Each task's rate over raw node:crypto verify's. */
  ratioToRaw: Record<VerifyTask, number>;
  /**
   * Raw node:crypto verifies per second with two threads verifying at once, over one thread
   * alone: how much a second core adds to signature checking on this machine (the thread pool
   * that checks new tokens can gain no more than this).
   */
  twoThreadSpeedup: number;
}

export type VerifyTask = 'nodeCryptoVerify' | 'joseJwtVerify' | 'serviceVerifyUncached' | 'serviceVerifyCached';

const ISSUER = 'https://bench.tessera.test';
const AUDIENCE = 'tessera';

/**
 * Verifies per second of one access token: raw node:crypto signature verify (the floor of any
 * JWT library), jose.jwtVerify as the usual design calls it, AccessTokenService.verify with the
 * verified-token cache off, and with it on (the token presented again).
 */
export async function verifyFigures(alg: SigningAlgorithm, timeMs: number): Promise<VerifyFigures> {
  const jwk = await generateSigningJwk(alg);
  const keys = await parseKeySet(keySetJson([jwk]), 'bench');
  const options = { keys, issuer: ISSUER, audience: AUDIENCE, clientId: 'tessera', ttlMs: 15 * 60_000, clockToleranceSec: 5, clock: systemClock };
  const cached = new AccessTokenService(options);
  const uncached = new AccessTokenService({ ...options, verifiedCacheSize: 0 });
  const { token } = await cached.issue({ userId: 'bench-user', sessionId: 'bench-session', roles: ['user'], authTime: Date.now(), emailVerified: true, amr: ['pwd'], acr: 'aal1' });

  const [header, payload, signature] = token.split('.') as [string, string, string];
  const signingInput = Buffer.from(`${header}.${payload}`);
  const signatureBytes = Buffer.from(signature, 'base64url');
  const { d: _private, ...publicJwk } = jwk;
  const publicKey = createPublicKey({ key: publicJwk as JsonWebKey, format: 'jwk' });
  const raw =
    alg === 'EdDSA'
      ? () => cryptoVerify(null, signingInput, publicKey, signatureBytes)
      : () => cryptoVerify('sha256', signingInput, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signatureBytes);
  if (!raw()) throw new Error('raw verify failed');
  const joseKey = keys.active.publicKey;
  const joseOptions = { algorithms: [alg], issuer: ISSUER, audience: AUDIENCE, typ: ACCESS_TOKEN_TYP, clockTolerance: 5 };
  for (const service of [cached, uncached]) {
    if (!(await service.verify(token)).ok) throw new Error('service verify failed');
  }

  const bench = new Bench({ time: timeMs, warmupTime: Math.min(250, timeMs / 2) });
  bench
    .add('nodeCryptoVerify', () => {
      raw();
    })
    .add('joseJwtVerify', async () => {
      await jwtVerify(token, joseKey, joseOptions);
    })
    .add('serviceVerifyUncached', async () => {
      await uncached.verify(token);
    })
    .add('serviceVerifyCached', async () => {
      await cached.verify(token);
    });
  await bench.run();
  const opsPerSec = {} as Record<VerifyTask, number>;
  for (const task of bench.tasks) {
    const result = task.result;
    if (!('period' in result)) throw new Error(`${task.name}: ${result.state}`);
    opsPerSec[task.name as VerifyTask] = 1000 / result.period;
  }
  const ratioToRaw = {} as Record<VerifyTask, number>;
  for (const [name, ops] of Object.entries(opsPerSec)) ratioToRaw[name as VerifyTask] = ops / opsPerSec.nodeCryptoVerify;
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const one = await parallelVerifyRate(alg, spki, signingInput, signatureBytes, 1, timeMs);
  const two = await parallelVerifyRate(alg, spki, signingInput, signatureBytes, 2, timeMs);
  return { alg, opsPerSec, ratioToRaw, twoThreadSpeedup: two / one };
}

/** The worker: verifies the same signature in a loop for the given time, posts how many. */
const VERIFY_LOOP = `
const { workerData, parentPort } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
const { alg, spki, input, signature, ms } = workerData;
const key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
const data = Buffer.from(input), sig = Buffer.from(signature);
const options = alg === 'EdDSA' ? key : { key, dsaEncoding: 'ieee-p1363' };
const digest = alg === 'EdDSA' ? null : 'sha256';
let n = 0;
const end = performance.now() + ms;
while (performance.now() < end) { for (let i = 0; i < 20; i++) verify(digest, data, options, sig); n += 20; }
parentPort.postMessage(n);
`;

/** Verifies per second (all threads together) with `threads` worker threads verifying at once. */
async function parallelVerifyRate(
  alg: SigningAlgorithm,
  spki: Buffer,
  input: Buffer,
  signature: Buffer,
  threads: number,
  timeMs: number,
): Promise<number> {
  const counts = await Promise.all(
    Array.from(
      { length: threads },
      () =>
        new Promise<number>((resolve, reject) => {
          const worker = new Worker(VERIFY_LOOP, { eval: true, workerData: { alg, spki, input, signature, ms: timeMs } });
          worker.once('message', (n: number) => resolve(n));
          worker.once('error', reject);
        }),
    ),
  );
  return counts.reduce((a, b) => a + b, 0) / (timeMs / 1000);
}
