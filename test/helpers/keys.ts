import { generateSigningJwk, keySetJson, type KeySet, parseKeySet } from '../../src/tokens/keys.js';

/** A fresh in-memory key set (no files). */
export async function testKeySet(alg: 'EdDSA' | 'ES256' = 'EdDSA'): Promise<KeySet> {
  return parseKeySet(keySetJson([await generateSigningJwk(alg)]), 'test keys');
}
