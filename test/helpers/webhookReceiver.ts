import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { freePort } from './ports.js';

/** What a receiver does with a delivery. */
export type ReceiverMode = 'ok' | 'error' | 'hang' | 'reset';

export interface ReceivedDelivery {
  id: string;
  timestamp: string;
  body: string;
  /** The payload as Webhook.verify returned it (the signature checked). */
  payload: { type: string; timestamp: string; data: Record<string, unknown> };
}

export interface WebhookReceiver {
  url: string;
  /** Deliveries whose signature verified and that were answered 2xx. */
  readonly delivered: ReceivedDelivery[];
  /** Requests of every kind (including those refused by the mode). */
  readonly attempts: number;
  /** Requests whose signature did not verify (answered 400). */
  readonly rejected: number;
  setMode(mode: ReceiverMode): void;
  /** Closes the port (connections refused) until `up()`. */
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

/** A real node:http webhook receiver that verifies every request with standardwebhooks' Webhook.verify. */
export async function startWebhookReceiver(secret: string): Promise<WebhookReceiver> {
  const webhook = new Webhook(secret);
  const port = await freePort();
  const delivered: ReceivedDelivery[] = [];
  const sockets = new Set<Socket>();
  const hanging = new Set<ServerResponse>();
  let mode: ReceiverMode = 'ok';
  let attempts = 0;
  let rejected = 0;
  let server: Server | null = null;

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      attempts += 1;
      if (mode === 'reset') {
        req.socket.destroy();
        return;
      }
      if (mode === 'hang') {
        hanging.add(res);
        return;
      }
      if (mode === 'error') {
        res.writeHead(500).end('try later');
        return;
      }
      const headers = {
        'webhook-id': String(req.headers['webhook-id'] ?? ''),
        'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
        'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
      };
      let payload: ReceivedDelivery['payload'];
      try {
        payload = webhook.verify(body, headers) as ReceivedDelivery['payload'];
      } catch {
        rejected += 1;
        res.writeHead(400).end('bad signature');
        return;
      }
      delivered.push({ id: headers['webhook-id'], timestamp: headers['webhook-timestamp'], body, payload });
      res.writeHead(204).end();
    });
  };

  const up = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer(handle);
      s.on('connection', (socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        server = s;
        resolve();
      });
    });
  const down = async () => {
    const s = server;
    server = null;
    if (!s) return;
    for (const res of hanging) res.destroy();
    hanging.clear();
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  };

  await up();
  const address = (server as unknown as Server).address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}/hooks/tessera`,
    delivered,
    get attempts() {
      return attempts;
    },
    get rejected() {
      return rejected;
    },
    setMode(next) {
      mode = next;
      if (next !== 'hang') {
        for (const res of hanging) res.destroy();
        hanging.clear();
      }
    },
    down,
    up,
    close: down,
  };
}

/** A Standard Webhooks secret: whsec_ and the base64 of 32 random bytes. */
export function webhookSecret(): string {
  return `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64')}`;
}
