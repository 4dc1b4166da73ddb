import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The client package from its sources in this checkout (a real app installs @tessera-gateway/client).
const client = (file: string) => fileURLToPath(new URL(`../../packages/client/src/${file}`, import.meta.url));

export default defineConfig({
  resolve: {
    alias: [
      { find: /^@tessera-gateway\/client$/, replacement: client('index.ts') },
      { find: /^@tessera-gateway\/client\/apollo$/, replacement: client('apollo.ts') },
    ],
    // One copy of each, this app's own (the package's sources sit beside the repository's node_modules).
    dedupe: ['@apollo/client', 'graphql', 'rxjs', 'react', 'react-dom'],
  },
  oxc: { jsx: { runtime: 'automatic' } },
  server: { port: 5173, strictPort: true },
});
