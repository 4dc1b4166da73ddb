import type { EventPosition } from './types.js';

/**
 * Pagination cursors: opaque to clients, a position in the audit log underneath
 * (`<ms>-<seq>`, and the stream it is in when the log is several streams).
 */

const ENTRY_ID = /^\d{1,16}-\d{1,16}$/;
const SOURCE = /^[\x21-\x7e]{0,200}$/;

export function encodeCursor(position: EventPosition): string {
  return Buffer.from(position.source ? `${position.id}@${position.source}` : position.id, 'utf8').toString('base64url');
}

/** null for anything that is not a cursor this gateway made. */
export function decodeCursor(cursor: string): EventPosition | null {
  if (cursor.length === 0 || cursor.length > 400 || !/^[A-Za-z0-9_-]+$/.test(cursor)) return null;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const at = text.indexOf('@');
  const id = at < 0 ? text : text.slice(0, at);
  const source = at < 0 ? '' : text.slice(at + 1);
  if (!ENTRY_ID.test(id) || !SOURCE.test(source)) return null;
  return { id, source };
}

/** Stream entry ids compared as Redis does: by milliseconds, then by sequence. */
export function compareEntryIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  return compareDigits(am, bm) || compareDigits(as, bs);
}

function compareDigits(a: string, b: string): number {
  const x = a.replace(/^0+(?=\d)/, '');
  const y = b.replace(/^0+(?=\d)/, '');
  if (x.length !== y.length) return x.length - y.length;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Newest first: positive when `a` comes before (is newer than) `b`. */
export function comparePositions(a: EventPosition, b: EventPosition): number {
  const byId = compareEntryIds(a.id, b.id);
  if (byId !== 0) return byId;
  return a.source < b.source ? -1 : a.source > b.source ? 1 : 0;
}
