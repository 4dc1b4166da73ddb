import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BrowserContext, Page, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrometheusMetrics } from '../../src/observability/metrics.js';
import { launchBrowser, recordRequests, saveScreenshot, serveStatic, type StaticServer, type TestBrowser } from '../helpers/browser.js';
import { createTestServer, LOGIN, TEST_PASSWORD, type TestServer, uniqueEmail } from '../helpers/testServer.js';
import { sample } from '../observability/support.js';

/*
 * The example app (examples/web: React, Apollo Client 4, @tessera-gateway/client), built with
 * its own Vite and served by the test on a port of its own, in real Chromium against a gateway on
 * another port (another origin of the same site) with a 4-second access token, CORS_ORIGINS set to
 * the app and the refresh token in the HttpOnly cookie. Two pages of one browser context are two
 * tabs of the origin. Refreshes are counted at the gateway (its tessera_refreshes_total).
 */

const WEB = fileURLToPath(new URL('../../examples/web/', import.meta.url));
const VITE = join(WEB, 'node_modules', 'vite', 'bin', 'vite.js');
const TTL_S = 4;

let outDir: string;
let browser: TestBrowser;

beforeAll(async () => {
  if (!existsSync(VITE)) throw new Error('examples/web has no node_modules: run `npm ci` in examples/web (.ci/run does)');
  outDir = await mkdtemp(join(tmpdir(), 'tessera-web-'));
  await promisify(execFile)(process.execPath, [VITE, 'build', '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn'], { cwd: WEB });
  browser = await launchBrowser();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  if (outDir) await rm(outDir, { recursive: true, force: true });
});

/** The app served with its runtime config pointing at `gatewayUrl` (set once the gateway runs). */
async function serveApp(): Promise<{ app: StaticServer; point(gatewayUrl: string, transport: 'cookie' | 'body'): void }> {
  const files: Record<string, string> = { '/config.js': 'window.TESSERA_CONFIG = {};' };
  const app = await serveStatic({ dir: outDir, files, spaFallback: true });
  return {
    app,
    point(gatewayUrl, transport) {
      files['/config.js'] = `window.TESSERA_CONFIG = ${JSON.stringify({ url: `${gatewayUrl}/graphql`, transport })};`;
    },
  };
}

/** Every text the status line showed in a page, in order (recorded in the page as it changes). */
async function watchStatus(context: BrowserContext): Promise<void> {
  await context.addInitScript({
    content: `
      const log = [];
      window.statusLog = log;
      new MutationObserver(() => {
        const text = document.querySelector('[data-testid="status"]')?.textContent?.trim();
        if (text && log.at(-1) !== text) log.push(text);
      }).observe(document, { subtree: true, childList: true, characterData: true });
    `,
  });
}

const statusLog = (page: Page) => page.evaluate<string[]>('window.statusLog');
const status = (page: Page) => page.getByTestId('status').textContent();

async function refreshes(metrics: PrometheusMetrics): Promise<Record<string, number>> {
  const text = await metrics.registry.metrics();
  const outcomes = ['rotated', 'grace', 'reused', 'invalid', 'expired'];
  return Object.fromEntries(outcomes.map((outcome) => [outcome, sample(text, 'tessera_refreshes_total', { outcome }) ?? 0]));
}

/** "renewed N× while this tab was open" */
async function renewals(page: Page): Promise<number> {
  const text = (await page.getByTestId('token').textContent()) ?? '';
  return Number(/renewed (\d+)×/.exec(text)?.[1] ?? Number.NaN);
}

/** The refresh requests the pages sent (the client names its operation TesseraRefresh). */
function refreshRequests(requests: Request[]): Request[] {
  return requests.filter((request) => request.method() === 'POST' && (request.postData() ?? '').includes('TesseraRefresh'));
}

/** The `iat` (seconds) of each access token the gateway answered those refreshes with, in order. */
async function issuedAt(requests: Request[]): Promise<number[]> {
  const issued: number[] = [];
  for (const request of requests) {
    const body = (await (await request.response())?.json()) as { data?: { refreshToken?: { accessToken?: string } } } | undefined;
    const token = body?.data?.refreshToken?.accessToken;
    if (token) issued.push((JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { iat: number }).iat);
  }
  return issued.sort((a, b) => a - b);
}

/** Screenshots put side by side, each under its caption, saved as one more screenshot. */
async function sideBySide(context: BrowserContext, name: string, shots: [caption: string, file: string][]): Promise<void> {
  const cells = await Promise.all(
    shots.map(async ([caption, file]) => `<figure><figcaption>${caption}</figcaption><img src="data:image/png;base64,${(await readFile(file)).toString('base64')}"></figure>`),
  );
  const page = await context.newPage();
  await page.setViewportSize({ width: 1300, height: 400 });
  await page.setContent(
    `<style>body{margin:0;display:flex;gap:12px;padding:12px;background:#cfd3da;font:600 18px system-ui}figure{margin:0;flex:1}img{width:100%;border:1px solid #999;display:block}figcaption{margin:0 0 6px}</style>${cells.join('')}`,
  );
  await saveScreenshot(page, name);
  await page.close();
}

async function signUp(page: Page, email: string): Promise<void> {
  await expect.poll(() => status(page), { timeout: 15_000 }).toBe('Signed out');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(TEST_PASSWORD);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect.poll(() => status(page), { timeout: 15_000 }).toBe(`Signed in as ${email}`);
}

describe('the example app in Chromium, cookie mode', () => {
  let gateway: TestServer;
  let served: Awaited<ReturnType<typeof serveApp>>;
  const metrics = new PrometheusMetrics();

  beforeAll(async () => {
    served = await serveApp();
    gateway = await createTestServer({
      store: 'redis',
      env: { CORS_ORIGINS: served.app.url, REFRESH_TOKEN_TRANSPORT: 'cookie', ACCESS_TOKEN_TTL: `${TTL_S}s` },
      deps: { metrics },
    });
    served.point(gateway.url, 'cookie');
  });

  afterAll(async () => {
    await served?.app.close();
    await gateway?.close();
  });

  it('two tabs through several access-token expiries: one refresh per expiry reaches the gateway, neither tab is ever signed out; then log out in one tab signs the other out within a second', async () => {
    const context = await browser.newContext({ viewport: { width: 840, height: 600 } });
    await watchStatus(context);
    const seen = recordRequests(context);
    const one = await context.newPage();
    await one.goto(served.app.url);
    const email = uniqueEmail();
    // A page with no session asks the gateway once whether its cookie holds one (it cannot read
    // the HttpOnly cookie): that refresh, refused, is all there is before signing up.
    await expect.poll(() => status(one), { timeout: 15_000 }).toBe('Signed out');
    const probes = await refreshes(metrics);
    expect(probes).toEqual({ rotated: 0, grace: 0, reused: 0, invalid: 1, expired: 0 });
    await signUp(one, email);
    await saveScreenshot(one, 'client-1-signed-up');

    const two = await context.newPage();
    await two.goto(served.app.url);
    await expect.poll(() => status(two), { timeout: 15_000 }).toBe(`Signed in as ${email}`);
    await expect.poll(() => two.locator('[data-testid="sessions"] tbody tr').count()).toBe(1);
    await saveScreenshot(two, 'client-2-second-tab');

    // Three expiries (a refresh falls due a quarter of the lifetime before each).
    await expect.poll(async () => (await refreshes(metrics)).rotated, { timeout: TTL_S * 1000 * 6, interval: 200 }).toBeGreaterThanOrEqual(3);
    // The gateway saw one refresh per new token: never a second tab's duplicate (which would be a
    // `grace` answer) or a stale token (`reused`); tab one (open since the sign-up) saw every new
    // token, and both tabs hold the same one. Read together, as the next refresh may land between reads.
    await expect
      .poll(async () => {
        const counts = await refreshes(metrics);
        const inBrowser = refreshRequests(seen.requests).length - probes.invalid!;
        const [validOne, validTwo] = [await one.getByTestId('token').textContent(), await two.getByTestId('token').textContent()];
        return { ...counts, inBrowser, invalid: counts.invalid! - probes.invalid!, one: await renewals(one), two: await renewals(two), same: Number(validOne?.split(' · ')[0] === validTwo?.split(' · ')[0]), again: (await refreshes(metrics)).rotated };
      })
      .toSatisfy((c: Record<string, number>) => c.rotated === c.again && c.rotated! >= 3 && c.grace === 0 && c.reused === 0 && c.invalid === 0 && c.expired === 0 && c.one === c.rotated && c.two! >= 2 && c.same === 1 && c.inBrowser === c.rotated);
    // One per expiry, not two in a row: the new tokens were issued (iat) a refresh period apart
    // (3 s for a 4 s token; a timer never fires early, so only a doubled refresh comes sooner).
    const issued = await issuedAt(refreshRequests(seen.requests));
    expect(issued.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < issued.length; i += 1) expect(issued[i]! - issued[i - 1]!).toBeGreaterThanOrEqual(2);
    for (const page of [one, two]) {
      expect(await status(page)).toBe(`Signed in as ${email}`);
      const log = await statusLog(page);
      expect(log.slice(log.indexOf(`Signed in as ${email}`))).not.toContain('Signed out');
      // Cookie mode: the refresh token is HttpOnly, never readable from the page.
      expect(await page.evaluate<string>('document.cookie')).not.toContain('tessera_refresh');
    }
    const [cookie] = (await context.cookies(gateway.url)).filter((c) => c.name === 'tessera_refresh');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    const pageState = await one.evaluate<string>('document.cookie + JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage })');
    expect(pageState).not.toContain(cookie!.value);
    for (const page of [one, two]) {
      // The session list, reloaded, shows the refreshes (its last refresh is after its start).
      await page.getByRole('button', { name: 'Reload sessions' }).click();
      const cells = page.locator('[data-testid="sessions"] tbody tr td');
      await expect.poll(async () => (await cells.nth(1).textContent()) !== (await cells.nth(0).textContent())).toBe(true);
    }
    await sideBySide(context, 'client-3-two-tabs-after-refreshes', [
      ['Tab 1', await saveScreenshot(one, 'client-3-tab-one-after-refreshes')],
      ['Tab 2', await saveScreenshot(two, 'client-3-tab-two-after-refreshes')],
    ]);

    // Log out in tab one: tab two shows it within a second.
    await one.getByRole('button', { name: 'Log out', exact: true }).click();
    await expect.poll(() => status(one), { timeout: 5_000 }).toBe('Signed out');
    await expect.poll(() => status(two), { timeout: 1_000, interval: 50 }).toBe('Signed out');
    expect(await two.getByTestId('ended').textContent()).toBe('You logged out (in another tab).');
    await sideBySide(context, 'client-4-two-tabs-logged-out', [
      ['Tab 1: Log out', await saveScreenshot(one, 'client-4-logged-out')],
      ['Tab 2', await saveScreenshot(two, 'client-4-other-tab-signed-out')],
    ]);
    // Over at the gateway too: the cookie is gone, and a reload stays signed out.
    expect((await context.cookies(gateway.url)).filter((c) => c.name === 'tessera_refresh')).toEqual([]);
    await two.reload();
    await expect.poll(() => status(two), { timeout: 15_000 }).toBe('Signed out');
    expect(seen.outside()).toEqual([]);
    await context.close();
  }, 90_000);

  it('log in, the session list with a revoke button per session, log out everywhere', async () => {
    const email = uniqueEmail();
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(served.app.url);
    await signUp(page, email);
    // Another device signs in too.
    const other = await gateway.graphql(LOGIN, { email, password: TEST_PASSWORD });
    expect(other.errors).toEqual([]);
    await page.getByRole('button', { name: 'Log out', exact: true }).click();
    await expect.poll(() => status(page)).toBe('Signed out');
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await expect.poll(() => status(page), { timeout: 15_000 }).toBe(`Signed in as ${email}`);
    const rows = page.locator('[data-testid="sessions"] tbody tr');
    await expect.poll(() => rows.count()).toBe(2);
    await saveScreenshot(page, 'client-5-sessions');
    // Revoke the other device's session.
    const otherId = other.data!.login.session.id as string;
    await page.locator(`tr[data-session="${otherId}"] button`).click();
    await expect.poll(() => rows.count()).toBe(1);
    const refused = await gateway.graphql('mutation($t: String) { refreshToken(refreshToken: $t) { accessToken } }', { t: other.data!.login.refreshToken });
    expect(refused.errors[0]?.extensions.reason).toBe('REFRESH_TOKEN_INVALID');
    // Log out everywhere: signed out here, and this session is over at the gateway.
    await page.getByRole('button', { name: 'Log out everywhere' }).click();
    await expect.poll(() => status(page), { timeout: 5_000 }).toBe('Signed out');
    await page.reload();
    await expect.poll(() => status(page), { timeout: 15_000 }).toBe('Signed out');
    await context.close();
  }, 60_000);

  it('served from an origin not in CORS_ORIGINS, the app cannot call the gateway', async () => {
    const stranger = await serveStatic({ dir: outDir, files: { '/config.js': `window.TESSERA_CONFIG = ${JSON.stringify({ url: `${gateway.url}/graphql`, transport: 'cookie' })};` } });
    try {
      const page = await browser.newPage();
      await page.goto(stranger.url);
      await expect.poll(() => status(page), { timeout: 15_000 }).toBe('Signed out');
      const email = uniqueEmail();
      await page.getByLabel('Email').fill(email);
      await page.getByLabel('Password').fill(TEST_PASSWORD);
      await page.getByRole('button', { name: 'Sign up' }).click();
      await expect.poll(() => page.getByRole('alert').textContent(), { timeout: 10_000 }).toContain('The gateway could not be reached');
      expect(await status(page)).toBe('Signed out');
      await saveScreenshot(page, 'client-6-unlisted-origin');
      // Nothing reached the resolver: there is no such account.
      const login = await gateway.graphql(LOGIN, { email, password: TEST_PASSWORD });
      expect(login.errors[0]?.extensions.reason).toBe('INVALID_CREDENTIALS');
      await page.context().close();
    } finally {
      await stranger.close();
    }
  }, 60_000);
});

describe('the example app in Chromium, body mode', () => {
  let gateway: TestServer;
  let served: Awaited<ReturnType<typeof serveApp>>;
  const metrics = new PrometheusMetrics();

  beforeAll(async () => {
    served = await serveApp();
    gateway = await createTestServer({ store: 'redis', env: { CORS_ORIGINS: served.app.url, ACCESS_TOKEN_TTL: `${TTL_S}s` }, deps: { metrics } });
    served.point(gateway.url, 'body');
  });

  afterAll(async () => {
    await served?.app.close();
    await gateway?.close();
  });

  it('two tabs share the refresh token through localStorage and refresh once per expiry', async () => {
    const context = await browser.newContext();
    await watchStatus(context);
    const seen = recordRequests(context);
    const one = await context.newPage();
    await one.goto(served.app.url);
    const email = uniqueEmail();
    await signUp(one, email);
    const two = await context.newPage();
    await two.goto(served.app.url);
    await expect.poll(() => status(two), { timeout: 15_000 }).toBe(`Signed in as ${email}`);
    await expect.poll(async () => (await refreshes(metrics)).rotated, { timeout: TTL_S * 1000 * 4, interval: 200 }).toBeGreaterThanOrEqual(2);
    await expect
      .poll(async () => ({ ...(await refreshes(metrics)), one: await renewals(one), two: await renewals(two) }))
      .toSatisfy((c: Record<string, number>) => c.rotated! >= 2 && c.grace === 0 && c.reused === 0 && c.invalid === 0 && c.one === c.rotated && c.two! >= 1);
    const issued = await issuedAt(refreshRequests(seen.requests));
    for (let i = 1; i < issued.length; i += 1) expect(issued[i]! - issued[i - 1]!).toBeGreaterThanOrEqual(2);
    for (const page of [one, two]) {
      const log = await statusLog(page);
      expect(log.slice(log.indexOf(`Signed in as ${email}`))).not.toContain('Signed out');
    }
    await saveScreenshot(two, 'client-7-body-mode');
    await one.getByRole('button', { name: 'Log out', exact: true }).click();
    await expect.poll(() => status(two), { timeout: 5_000 }).toBe('Signed out');
    expect(await two.evaluate<string>('JSON.stringify({ ...localStorage })')).toBe('{}');
    await context.close();
  }, 60_000);
});
