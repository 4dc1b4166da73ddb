import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildGateway, runGateway } from '../helpers/builtGateway.js';
import { freePort } from '../helpers/ports.js';

let dir: string;
beforeAll(async () => {
  dir = await buildGateway();
}, 60_000);


describe('node dist/main.js', () => {
  it('refuses to start in production without REDIS_URL, with one line', async () => {
    const run = runGateway(dir, { NODE_ENV: 'production' });
    expect(await run.exited).toBe(1);
    expect(run.output().trim().split('\n')).toEqual([
      'tessera: REDIS_URL is required when NODE_ENV=production (the embedded store keeps sessions in one process only)',
    ]);
  });

  it('refuses to start in production without SIGNING_KEYS, with one line', async () => {
    const run = runGateway(dir, { NODE_ENV: 'production', REDIS_URL: 'redis://127.0.0.1:6379' });
    expect(await run.exited).toBe(1);
    expect(run.output().trim()).toMatch(/^tessera: SIGNING_KEYS is required when NODE_ENV=production[^\n]*$/);
  });

  it('names a bad setting in one line', async () => {
    const run = runGateway(dir, { CLOCK_TOLERANCE: '90' });
    expect(await run.exited).toBe(1);
    expect(run.output().trim()).toMatch(/^tessera: CLOCK_TOLERANCE[^\n]*$/);
  });

  it('refuses MAIL_TRANSPORT=log in production, with one line', async () => {
    const log = runGateway(dir, { NODE_ENV: 'production', REDIS_URL: 'redis://127.0.0.1:6379', SIGNING_KEYS: '/nonexistent/keys.json', MAIL_TRANSPORT: 'log' });
    expect(await log.exited).toBe(1);
    expect(log.output().trim()).toMatch(/^tessera: MAIL_TRANSPORT=log is refused when NODE_ENV=production[^\n]*$/);
  }, 20_000);

  it('refuses a MAIL_TEMPLATES_DIR that does not exist, with one line', async () => {
    const templates = runGateway(dir, { MAIL_TEMPLATES_DIR: '/nonexistent/mail-templates' });
    expect(await templates.exited).toBe(1);
    expect(templates.output().trim()).toMatch(/^tessera: MAIL_TEMPLATES_DIR: "\/nonexistent\/mail-templates" is not a folder[^\n]*$/);
  }, 20_000);

  it('starts with the embedded store and a kept key, says so, and stops cleanly on SIGTERM', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'tessera-cwd-'));
    const port = await freePort();
    const start = async () => {
      const run = runGateway(dir, { PORT: String(port), HOST: '127.0.0.1' }, cwd);
      await expect.poll(() => run.output(), { timeout: 15_000 }).toContain('serving GraphQL');
      return run;
    };
    const first = await start();
    expect(first.output()).toContain('EMBEDDED STORE');
    expect(first.output()).toContain('generated a development signing key');
    const jwks1 = await (await fetch(`http://127.0.0.1:${port}/.well-known/jwks.json`)).json();
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    const second = await start();
    const jwks2 = await (await fetch(`http://127.0.0.1:${port}/.well-known/jwks.json`)).json();
    expect(jwks2).toEqual(jwks1);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  }, 40_000);
});
