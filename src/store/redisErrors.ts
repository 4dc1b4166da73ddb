import { StoreUnavailableError } from '../errors.js';

/**
 * Replies that mean "not now" rather than "wrong": the store is unavailable, nothing was written.
 * (TESSERA_RECORD, a record the scripts cannot read, is not among them: that is a bug or a store
 * written by another version, and surfaces as an internal error.)
 */
const TRANSIENT_REPLIES = /^(LOADING|READONLY|CLUSTERDOWN|MASTERDOWN|TRYAGAIN|NOREPLICAS|BUSY|MOVED|ASK|TESSERA_DEADLINE)\b/;

/**
 * Translates an ioredis failure at the store boundary: connection loss, timeouts and
 * transient replies become StoreUnavailableError; anything else (a bug) is passed on as is.
 */
export function translateRedisError(error: unknown): Error {
  if (error instanceof StoreUnavailableError) return error;
  if (error instanceof Error && error.name === 'ReplyError' && !TRANSIENT_REPLIES.test(error.message)) {
    return error;
  }
  return new StoreUnavailableError(error);
}
