import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, request as httpRequest, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, type BrowserContextOptions, chromium, type Page, type Request } from 'playwright-core';

/**
 * Real Chromium for the browser tests: Debian's `chromium` (`/usr/bin/chromium`, which `.ci/run`
 * installs when it is missing) driven by playwright-core. Playwright makes a fresh profile for
 * each launch, so no --user-data-dir; the flags keep the browser from calling out to the
 * (closed) network on its own.
 */
export const CHROMIUM_PATH = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
] as const;

/** Where screenshots go (git-ignored; CI keeps the folder as an artifact). */
export const SCREENSHOT_DIR = fileURLToPath(new URL('../../test-results/screenshots/', import.meta.url));

export interface LaunchOptions {
  /**
   * Chromium's --host-resolver-rules, e.g. `MAP *.tessera.test 127.0.0.1`, to give local
   * servers real-looking host names (sibling subdomains of one site).
   */
  hostResolverRules?: string;
  /** More Chromium flags. */
  args?: string[];
}

export interface TestBrowser {
  browser: Browser;
  /** A fresh context (its own cookies and storage), closed with the browser. */
  newContext(options?: BrowserContextOptions): Promise<BrowserContext>;
  /** A page in a fresh context of its own. */
  newPage(options?: BrowserContextOptions): Promise<Page>;
  close(): Promise<void>;
}

/** Launches headless Chromium. Close it in `afterAll`/`afterEach` (it closes its contexts). */
export async function launchBrowser(options: LaunchOptions = {}): Promise<TestBrowser> {
  const args: string[] = [...CHROMIUM_ARGS, ...(options.args ?? [])];
  if (options.hostResolverRules) args.push(`--host-resolver-rules=${options.hostResolverRules}`);
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args });
  const newContext = (contextOptions?: BrowserContextOptions) => browser.newContext(contextOptions);
  return {
    browser,
    newContext,
    async newPage(contextOptions) {
      const context = await newContext(contextOptions);
      return context.newPage();
    },
    async close() {
      await browser.close();
    },
  };
}

/**
 * Saves a full-page screenshot as `test-results/screenshots/<name>.png` and returns its path.
 * Names are made file-safe; use a test-specific prefix (`cors-listed-origin-me`).
 */
export async function saveScreenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name.replace(/[^a-zA-Z0-9._-]+/g, '-')}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * Records every request the page (or every page of the context) makes. `outside()` lists those
 * whose host is not one of `localHosts` (default 127.0.0.1 and localhost): a test with the
 * network closed asserts it is empty.
 */
export function recordRequests(target: Page | BrowserContext, localHosts: readonly string[] = ['127.0.0.1', 'localhost']) {
  const requests: Request[] = [];
  target.on('request', (request) => requests.push(request));
  return {
    requests,
    urls: () => requests.map((request) => request.url()),
    outside: () =>
      requests
        .map((request) => request.url())
        .filter((url) => {
          const parsed = new URL(url);
          if (parsed.protocol === 'data:' || parsed.protocol === 'blob:' || parsed.protocol === 'about:') return false;
          return !localHosts.includes(parsed.hostname);
        }),
  };
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

export interface TlsCertificate {
  key: string;
  cert: string;
}

/**
 * A throwaway self-signed certificate (openssl) for `hosts` (DNS names, wildcards allowed), for
 * HTTPS between Chromium (launched with `--ignore-certificate-errors`) and local servers.
 */
export async function selfSignedCertificate(hosts: readonly string[]): Promise<TlsCertificate> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tessera-tls-'));
  try {
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', `/CN=${hosts[0]}`, '-addext', `subjectAltName=${hosts.map((host) => `DNS:${host}`).join(',')}`,
      '-keyout', key, '-out', cert,
    ]);
    return { key: await readFile(key, 'utf8'), cert: await readFile(cert, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A TLS-terminating reverse proxy on a free port of 127.0.0.1 in front of `target`
 * (`http://127.0.0.1:<port>`), as a load balancer in production: it passes the Host header on
 * and adds `X-Forwarded-Proto: https` and `X-Forwarded-For` (so the gateway needs
 * TRUST_PROXY=1 to believe them).
 */
export async function tlsProxy(target: string, certificate: TlsCertificate): Promise<{ port: number; close(): Promise<void> }> {
  const upstream = new URL(target);
  const server = createHttpsServer(certificate, (req, res) => {
    const forwarded = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, 'x-forwarded-proto': 'https', 'x-forwarded-for': req.socket.remoteAddress ?? '127.0.0.1' },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forwarded.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(forwarded);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface StaticServerOptions {
  /** A folder to serve (e.g. a built app). */
  dir?: string;
  /** Pages given inline, by path (`/index.html`), checked before `dir`. */
  files?: Record<string, string | Buffer>;
  /** Unknown paths without a file extension get `/index.html` (a single-page app's routes). */
  spaFallback?: boolean;
  /** Listen address (default 127.0.0.1). */
  host?: string;
  /** Serve HTTPS with this certificate (`url` is then https://). */
  tls?: TlsCertificate;
}

export interface StaticServer {
  /** `http://127.0.0.1:<port>` (https:// with `tls`) */
  url: string;
  port: number;
  /** Paths requested, in order. */
  requested: string[];
  close(): Promise<void>;
}

/**
 * Serves a folder and/or inline pages over HTTP on a free port. `/` is `/index.html`. Answers
 * `no-store`, so each test sees what it served.
 */
export async function serveStatic(options: StaticServerOptions): Promise<StaticServer> {
  const requested: string[] = [];
  const root = options.dir ? path.resolve(options.dir) : undefined;
  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    let pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requested.push(pathname);
    if (pathname.endsWith('/')) pathname += 'index.html';
    const send = (status: number, body: string | Buffer, type: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    const typeOf = (name: string) => CONTENT_TYPES[path.extname(name).toLowerCase()] ?? 'application/octet-stream';
    const inline = options.files?.[pathname];
    if (inline !== undefined) return send(200, inline, typeOf(pathname));
    if (root) {
      const candidates = [pathname];
      if (options.spaFallback && path.extname(pathname) === '') candidates.push('/index.html');
      for (const candidate of candidates) {
        const file = path.join(root, candidate);
        if (!file.startsWith(root + path.sep)) return send(403, 'forbidden', 'text/plain');
        const info = await stat(file).catch(() => null);
        if (info?.isFile()) return send(200, await readFile(file), typeOf(file));
      }
    }
    if (options.spaFallback && path.extname(pathname) === '' && options.files?.['/index.html'] !== undefined) {
      return send(200, options.files['/index.html'], typeOf('/index.html'));
    }
    send(404, 'not found', 'text/plain; charset=utf-8');
  };
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handler(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  };
  const server: Server = options.tls ? createHttpsServer(options.tls, listener) : createServer(listener);
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as { port: number };
  return {
    url: `${options.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    requested,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
