# syntax=docker/dockerfile:1

# ---- build: compile TypeScript to dist/ ----
# Node 24, an LTS line (the gateway supports 22, 24 and 26).
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/subgraph/package.json ./packages/subgraph/
# No dependency needs an install script (argon2's binary is an optional dependency).
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY packages/subgraph/tsconfig.json packages/subgraph/tsconfig.build.json ./packages/subgraph/
COPY packages/subgraph/src ./packages/subgraph/src
COPY src ./src
# Builds the workspace package @tessera-gateway/subgraph first (the gateway re-exports it), then the gateway.
RUN npm run build

# ---- runtime: production dependencies, dist/ and the SDL ----
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/subgraph/package.json ./packages/subgraph/
# Keep optional dependencies: @node-rs/argon2 ships its native binary as one.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/packages/subgraph/dist ./packages/subgraph/dist
COPY --from=build /app/dist ./dist
# The server reads the GraphQL SDL from schema/ at run time.
COPY schema ./schema
# Signing keys are never baked in: mount them and point SIGNING_KEYS at the file.
USER node
EXPOSE 4000
HEALTHCHECK --interval=15s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:4000/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/main.js"]
