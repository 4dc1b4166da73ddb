import { connect } from 'node:net';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildGateway, runGateway } from '../helpers/builtGateway.js';
import { uniquePrefix } from '../helpers/redis.js';
import { freePort } from '../helpers/ports.js';

let dir: string;
beforeAll(async () => {
  dir = await buildGateway();
}, 60_000);

/** Sends a request's head and half its body now; the rest when `finish` is called. Resolves with the raw response. */
function slowRequest(port: number, body: string) {
  const socket = connect(port, '127.0.0.1');
  let response = '';
  socket.on('data', (chunk) => (response += chunk));
  const done = new Promise<string>((resolve) => socket.on('close', () => resolve(response)));
  socket.write(
    `POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`,
  );
  const half = Math.floor(body.length / 2);
  socket.write(body.slice(0, half));
  return { finish: () => socket.write(body.slice(half)), done };
}

describe('graceful shutdown (SIGTERM)', () => {
  it('stops accepting, finishes the request in flight, closes Redis and exits 0', async () => {
    const port = await freePort();
    const cwd = await mkdtemp(join(tmpdir(), 'tessera-stop-'));
    const run = runGateway(
      dir,
      { PORT: String(port), HOST: '127.0.0.1', REDIS_URL: 'redis://127.0.0.1:6379', REDIS_KEY_PREFIX: uniquePrefix('stop') },
      cwd,
    );
    await expect.poll(() => run.output(), { timeout: 15_000 }).toContain('serving GraphQL');

    const inFlight = slowRequest(port, JSON.stringify({ query: '{ __typename }' }));
    await new Promise((resolve) => setTimeout(resolve, 100));
    run.child.kill('SIGTERM');
    await expect.poll(() => run.output()).toContain('shutting down');

    // New connections are refused while the old request is still open.
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();

    inFlight.finish();
    const response = await inFlight.done;
    expect(response).toMatch(/^HTTP\/1\.1 200/);
    expect(response).toContain('"__typename":"Query"');

    expect(await run.exited).toBe(0);
    expect(run.output()).toContain('stopped: requests finished, store closed');
  }, 40_000);

  it('stops on SIGTERM even when its standard output is a closed pipe (a log shipper gone)', async () => {
    const port = await freePort();
    const cwd = await mkdtemp(join(tmpdir(), 'tessera-stop-'));
    const run = runGateway(dir, { PORT: String(port), HOST: '127.0.0.1', REDIS_URL: 'redis://127.0.0.1:6379', REDIS_KEY_PREFIX: uniquePrefix('stop') }, cwd);
    await expect.poll(() => run.output(), { timeout: 15_000 }).toContain('serving GraphQL');
    // The reader of its stdout goes away: every log write from now on fails with EPIPE.
    run.child.stdout!.destroy();
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
  }, 40_000);
});
