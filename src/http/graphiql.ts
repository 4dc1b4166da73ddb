import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * GraphiQL at `/graphiql` outside production (docs/contract.md section 11), from files shipped in
 * the package: no CDN, so it works with no internet. GraphiQL 3.9 is the last release with a
 * prebuilt browser bundle (`graphiql.min.js`, a UMD build over the React 18 UMD builds); 4 and 5
 * ship ES modules only (with Monaco's workers in 5), which would need a bundler of our own.
 * `npm run build` copies the files into `dist/graphiql/` (so `npm pack` and the image carry them);
 * run from the sources, they are read from node_modules.
 *
 * The page fetches `/graphql` with `credentials: 'include'`, so cookie mode works from it, under
 * a Content-Security-Policy that lets it load and call nothing but this gateway.
 */

/** The files under /graphiql/: their name → the package and the file in it. */
const ASSETS = {
  'react.production.min.js': ['react', 'umd/react.production.min.js'],
  'react-dom.production.min.js': ['react-dom', 'umd/react-dom.production.min.js'],
  'graphiql.min.js': ['graphiql', 'graphiql.min.js'],
  'graphiql.min.css': ['graphiql', 'graphiql.min.css'],
} as const satisfies Record<string, readonly [string, string]>;

type AssetName = keyof typeof ASSETS;

/** Where `npm run build` puts the files (dist/graphiql/, beside dist/http/). */
const PACKAGED_DIR = fileURLToPath(new URL('../graphiql/', import.meta.url));

/**
 * The page's own script: GraphiQL on /graphql (relative, so a path prefix in front still works),
 * cookies included. Subscriptions go over WebSocket to the same /graphql (graphql-ws is in
 * GraphiQL's bundle); GraphiQL sends the Headers editor's values as the connection_init payload,
 * so `{ "authorization": "Bearer …" }` there authenticates the connection.
 */
const START_JS = `'use strict';
const url = new URL('graphql', document.baseURI);
const fetcher = GraphiQL.createFetcher({
  url: url.href,
  subscriptionUrl: url.href.replace(/^http/, 'ws'),
  fetch: (input, init) => fetch(input, { ...init, credentials: 'include' }),
});
ReactDOM.createRoot(document.getElementById('graphiql')).render(
  React.createElement(GraphiQL, { fetcher, shouldPersistHeaders: false, defaultEditorToolsVisibility: true }),
);
`;

const PAGE_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="robots" content="noindex" />
    <link rel="icon" href="data:," />
    <title>Tessera · GraphiQL</title>
    <link rel="stylesheet" href="graphiql/graphiql.min.css" />
    <link rel="stylesheet" href="graphiql/page.css" />
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
    <script src="graphiql/react.production.min.js"></script>
    <script src="graphiql/react-dom.production.min.js"></script>
    <script src="graphiql/graphiql.min.js"></script>
    <script src="graphiql/start.js"></script>
  </body>
</html>
`;

const PAGE_CSS = 'html, body { margin: 0; height: 100%; } #graphiql { height: 100vh; }\n';

/** Nothing but this origin: the page can neither load from a CDN nor send what it shows elsewhere. */
export const GRAPHIQL_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  // GraphiQL's editors set inline styles.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export interface StaticFile {
  contentType: string;
  body: Buffer;
}

/** The GraphiQL routes: path → file. */
export type GraphiQLFiles = ReadonlyMap<string, StaticFile>;

/** The file of one asset: packaged (dist/graphiql/), else from node_modules (a source checkout). */
function assetPath(name: AssetName): string | null {
  const packaged = path.join(PACKAGED_DIR, name);
  if (existsSync(packaged)) return packaged;
  const [pkg, file] = ASSETS[name];
  try {
    const require = createRequire(import.meta.url);
    const candidate = path.join(path.dirname(require.resolve(`${pkg}/package.json`)), file);
    return existsSync(candidate) ? candidate : null;
  } catch {
    return null;
  }
}

/**
 * GraphiQL's files, read once (at start), or null when they are missing (an install
 * without them: /graphiql then answers 404, as in production).
 */
export function loadGraphiQL(): GraphiQLFiles | null {
  // Read once per process: the files do not change while it runs.
  loaded ??= readGraphiQL();
  return loaded;
}

let loaded: GraphiQLFiles | null | undefined;

function readGraphiQL(): GraphiQLFiles | null {
  const files = new Map<string, StaticFile>();
  const text = (body: string, contentType: string): StaticFile => ({ contentType, body: Buffer.from(body, 'utf8') });
  files.set('/graphiql', text(PAGE_HTML, 'text/html; charset=utf-8'));
  files.set('/graphiql/start.js', text(START_JS, 'text/javascript; charset=utf-8'));
  files.set('/graphiql/page.css', text(PAGE_CSS, 'text/css; charset=utf-8'));
  for (const name of Object.keys(ASSETS) as AssetName[]) {
    const file = assetPath(name);
    if (file === null) return null;
    const contentType = name.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8';
    files.set(`/graphiql/${name}`, { contentType, body: readFileSync(file) });
  }
  return files;
}

/** `npm run build`: copies the assets into `dir` (dist/graphiql/), failing loudly if one is missing. */
export function packageGraphiQL(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const require = createRequire(import.meta.url);
  for (const [name, [pkg, file]] of Object.entries(ASSETS)) {
    copyFileSync(path.join(path.dirname(require.resolve(`${pkg}/package.json`)), file), path.join(dir, name));
  }
}
