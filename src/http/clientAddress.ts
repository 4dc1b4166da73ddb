import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { Config } from '../config.js';

function normalize(address: string | undefined): string | null {
  if (!address) return null;
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/**
 * The client's address: the socket's, unless TRUST_PROXY says which X-Forwarded-For entries to
 * believe (the last N hops, or those appended by listed proxy addresses). By default none are.
 * An entry that is not an IP address (a proxy that passes on what the client wrote) is not
 * believed: the socket's address stands.
 */
export function clientAddress(request: IncomingMessage, trust: Config['trustProxy']): string | null {
  const socket = normalize(request.socket.remoteAddress);
  if (trust.kind === 'none') return socket;
  const forwarded = forwardedAddress(request, trust, socket);
  return forwarded !== null && isIP(forwarded) !== 0 ? forwarded : socket;
}

/** The X-Forwarded-For entry the trusted proxies vouch for. */
function forwardedAddress(
  request: IncomingMessage,
  trust: Exclude<Config['trustProxy'], { kind: 'none' }>,
  socket: string | null,
): string | null {
  const header = request.headers['x-forwarded-for'];
  const forwarded = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  // The chain as the last proxy saw it: client, proxy1, proxy2, …, then the socket peer.
  const chain = [...forwarded.map((a) => normalize(a) ?? a), socket ?? ''];
  if (trust.kind === 'hops') return chain[Math.max(0, chain.length - 1 - trust.hops)] ?? socket;
  let i = chain.length - 1;
  while (i > 0 && trust.addresses.includes(chain[i]!)) i--;
  return chain[i] ?? socket;
}
