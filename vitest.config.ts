import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // One graphql for everyone: Node (and so @apollo/*, loaded natively) resolves 'graphql' to its
    // CommonJS build, while Vite would pick the ES module one for our sources; two copies fail
    // graphql's own instanceof checks ("Cannot use GraphQLSchema from another module").
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    include: ['test/**/*.test.ts'],
  },
});
