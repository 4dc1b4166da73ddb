import { deflateRawSync, inflateRawSync } from 'node:zlib';

/**
 * How the Redis store keeps a session's User-Agent: compressed against a preset dictionary of
 * what browsers send (as HTTP/2's HPACK keeps a static table of common headers). A current
 * desktop Chrome's 117-byte User-Agent then takes about ten bytes; a User-Agent the dictionary
 * does not help is kept as it is. Lossless either way: what `sessions` shows is what was sent.
 *
 * The first byte says how the rest is kept, so a stored value always decodes the same way:
 * FORMAT_RAW (UTF-8) or FORMAT_DICTIONARY_1 (raw deflate with DICTIONARY_1). DICTIONARY_1 must
 * never change once sessions are stored with it; a better dictionary gets a new format byte.
 * An empty value means no User-Agent.
 */

const FORMAT_RAW = 0;
const FORMAT_DICTIONARY_1 = 1;

/**
 * Fragments of current browsers' User-Agents, the most frequent last (deflate codes nearer
 * matches in fewer bits). Platform, engine and browser tokens, not any one browser's exact string.
 */
const DICTIONARY_1 = Buffer.from(
  [
    'okhttp/4.12.0 Dalvik/2.1.0 (Linux; U; Android 14; ',
    'Mozilla/5.0 (compatible; ',
    ' OPR/',
    ' SamsungBrowser/',
    ' CriOS/',
    ' FxiOS/',
    'Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:',
    'Mozilla/5.0 (X11; Linux x86_64; rv:',
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:',
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:',
    '.0) Gecko/20100101 Firefox/',
    'Mozilla/5.0 (iPad; CPU OS 17_',
    'Mozilla/5.0 (iPhone; CPU iPhone OS 18_',
    ' like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.',
    ' Mobile/15E148 Safari/604.1',
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.',
    ' Safari/605.1.15',
    'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/',
    '.0.0.0 Mobile Safari/537.36',
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/',
    '.0.0.0 Safari/537.36 Edg/',
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/',
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/',
    '.0.0.0 Safari/537.36',
  ].join(''),
);

/** The most a stored User-Agent may take (the record gives it a 2-byte length). */
export const MAX_PACKED_USER_AGENT_BYTES = 65_535;

/** What the store keeps for `userAgent` (an empty buffer for none). */
export function packUserAgent(userAgent: string | null): Buffer {
  if (!userAgent) return Buffer.alloc(0);
  const raw = Buffer.from(userAgent, 'utf8');
  if (raw.length >= MAX_PACKED_USER_AGENT_BYTES) throw new RangeError('a User-Agent over 64 KiB');
  const compressed = deflateRawSync(raw, { dictionary: DICTIONARY_1, level: 9 });
  return compressed.length < raw.length
    ? Buffer.concat([Buffer.of(FORMAT_DICTIONARY_1), compressed])
    : Buffer.concat([Buffer.of(FORMAT_RAW), raw]);
}

/** The User-Agent `packUserAgent` was given. */
export function unpackUserAgent(packed: Buffer): string | null {
  if (packed.length === 0) return null;
  const body = packed.subarray(1);
  switch (packed[0]) {
    case FORMAT_RAW:
      return body.toString('utf8');
    case FORMAT_DICTIONARY_1:
      return inflateRawSync(body, { dictionary: DICTIONARY_1, maxOutputLength: MAX_PACKED_USER_AGENT_BYTES }).toString('utf8');
    default:
      throw new Error(`unknown stored User-Agent format ${packed[0]}`);
  }
}
