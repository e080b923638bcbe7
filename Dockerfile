# lobe-quota as a container: the metering proxy, admin API, /quota, dashboard and MCP tool on port 3400.
#
#   docker build -t lobe-quota .
#   docker run -p 3400:3400 -v lobe-quota-data:/data -e OPENAI_API_KEY=sk-… lobe-quota
#
# The first start prints the admin token once (only its hash is stored): `docker logs <container>`.
# compose.yaml runs it beside PostgreSQL and LobeHub; `npm run test:image` builds and checks this file.

# ---- build: the toolchain, every dependency, tsc ------------------------------------------------
FROM node:20-bookworm-slim AS build

# better-sqlite3 is a native addon. It is compiled here, against this image's own Node headers
# (/usr/local/include/node), so it matches the runtime's Node exactly and the build downloads
# nothing but npm packages (no prebuilt binary, no headers tarball).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local \
    npm_config_build_from_source=true \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false

WORKDIR /app
COPY package.json package-lock.json ./
# Install scripts off, then better-sqlite3's alone: the one package.json's allowScripts lets run
# (the others: @scarf/scarf's telemetry, core-js-pure's banner, optional tree-sitter grammars, and
# esbuild's and protobufjs's checks).
RUN npm ci --ignore-scripts \
 && npm rebuild better-sqlite3 \
 && node -e "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()"

COPY tsconfig.json tsconfig.build.json ./
COPY server server
COPY plugin plugin
# Of better-sqlite3's build only the addon is kept (its sources and objects are ~25 MB), and the
# dependencies lose their source maps, type declarations and Markdown (~60 MB) that nothing loads.
RUN npm run build \
 && npm prune --omit=dev \
 && find node_modules -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.md' \) -delete \
 && cd node_modules/better-sqlite3 \
 && mv build/Release/better_sqlite3.node . \
 && rm -rf build deps src \
 && mkdir -p build/Release \
 && mv better_sqlite3.node build/Release/ \
 && cd /app \
 && node -e "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()"

# ---- runtime: Node, the production dependencies, the compiled server ----------------------------
FROM node:20-bookworm-slim

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3400 \
    DATA_DIR=/data

WORKDIR /app
# Owned by root and read-only to the service user; only /data is writable.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY manifest.json lobe-quota.config.example.json lobe-quota.config.schema.json ./
COPY public public
COPY assets assets
COPY server/openapi/docs-page server/openapi/docs-page

# The CLI (a client of the admin API) on the PATH:
#   docker compose exec lobe-quota lobe-quota budgets list
RUN printf '#!/bin/sh\nexec node /app/dist/server/cli/main.js "$@"\n' > /usr/local/bin/lobe-quota \
 && chmod 755 /usr/local/bin/lobe-quota \
 && mkdir -p /data \
 && chown node:node /data

# `node` (uid 1000) comes with the base image.
USER node
VOLUME /data
EXPOSE 3400

# /health answers 200 while the store is reachable (503 when PostgreSQL is not). compose.yaml starts
# LobeHub once it passes, so it is asked every 10 s (a short-lived node process).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3400) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# Node is PID 1 and handles SIGTERM itself: it stops accepting, lets streams in flight finish (up
# to 10 s), settles them, closes the store and exits 0. Give `docker stop` more than that
# (compose.yaml sets stop_grace_period: 30s).
STOPSIGNAL SIGTERM
CMD ["node", "dist/server/main.js"]
