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
 * believed: the socket's address stands. A port after the address is dropped.
 */
export function clientAddress(request: IncomingMessage, trust: Config['trustProxy']): string | null {
  const socket = normalize(request.socket.remoteAddress);
  if (trust.kind === 'none') return socket;
  const forwarded = forwardedAddress(request, trust, socket);
  return (forwarded !== null && withoutPort(forwarded)) || socket;
}

/**
 * The IP address of an X-Forwarded-For entry, which some proxies write with a port
 * (`203.0.113.7:41234`, `[2001:db8::7]:443`); null for anything that is not an address.
 */
function withoutPort(entry: string): string | null {
  if (isIP(entry) !== 0) return entry;
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(entry);
  if (bracketed && isIP(bracketed[1]!) === 6) return bracketed[1]!;
  const v4 = /^([\d.]+):\d{1,5}$/.exec(entry);
  if (v4 && isIP(v4[1]!) === 4) return v4[1]!;
  return null;
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
