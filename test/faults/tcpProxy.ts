import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of a private Redis, for cutting one client's link (the revocation feed of
 * one gateway instance) while everything else keeps talking to Redis directly.
 */
export interface TcpProxy {
  url: string;
  /** Severs every proxied connection and refuses new ones until `restore()`. */
  cut(): void;
  restore(): void;
  /**
   * Every connection open now goes silent for good: nothing more is forwarded either way, and
   * neither end is told (a NAT or firewall that dropped the flow). New connections work.
   */
  blackhole(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let open = true;
  const pairs = new Set<Socket>();
  const silence = new Map<Socket, () => void>();
  const server: Server = createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    pairs.add(client);
    pairs.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(client);
      pairs.delete(upstream);
      silence.delete(client);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
    silence.set(client, () => {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.on('data', () => undefined);
      upstream.on('data', () => undefined);
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${port}`,
    cut() {
      open = false;
      for (const socket of pairs) socket.destroy();
      pairs.clear();
      silence.clear();
    },
    restore() {
      open = true;
    },
    blackhole() {
      for (const mute of silence.values()) mute();
      silence.clear();
    },
    close: () =>
      new Promise<void>((done) => {
        open = false;
        for (const socket of pairs) socket.destroy();
        server.close(() => done());
      }),
  };
}
