import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    alias: [
      // One graphql for everyone: Node (and so @apollo/*, loaded natively) resolves 'graphql' to its
      // CommonJS build, while Vite would pick the ES module one for our sources; two copies fail
      // graphql's own instanceof checks ("Cannot use GraphQLSchema from another module").
      { find: /^graphql$/, replacement: require.resolve('graphql') },
      // The workspace package from its sources, as tsconfig.json's paths have it: nothing needs building first.
      { find: /^@tessera-gateway\/subgraph$/, replacement: fileURLToPath(new URL('./packages/subgraph/src/index.ts', import.meta.url)) },
      { find: /^@tessera-gateway\/subgraph\/claims$/, replacement: fileURLToPath(new URL('./packages/subgraph/src/claims.ts', import.meta.url)) },
      { find: /^@tessera-gateway\/client$/, replacement: fileURLToPath(new URL('./packages/client/src/index.ts', import.meta.url)) },
      { find: /^@tessera-gateway\/client\/apollo$/, replacement: fileURLToPath(new URL('./packages/client/src/apollo.ts', import.meta.url)) },
      { find: /^@tessera-gateway\/client\/ws$/, replacement: fileURLToPath(new URL('./packages/client/src/ws.ts', import.meta.url)) },
    ],
  },
  test: {
    include: ['test/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
  },
});
