import type { IncomingMessage } from 'node:http';
import type { Config } from '../config.js';

function normalize(address: string | undefined): string | null {
  if (!address) return null;
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/**
 * The client's address: the socket's, unless TRUST_PROXY says which X-Forwarded-For entries to
 * believe (the last N hops, or those appended by listed proxy addresses). By default none are.
 */
export function clientAddress(request: IncomingMessage, trust: Config['trustProxy']): string | null {
  const socket = normalize(request.socket.remoteAddress);
  if (trust.kind === 'none') return socket;
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
