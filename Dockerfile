# syntax=docker/dockerfile:1
# Build: compile TypeScript with every dependency present. No install scripts here: compiling
# needs no native addon, and better-sqlite3's script would want a toolchain this stage lacks.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm ci --ignore-scripts --no-audit --no-fund && npm run build

# Production dependencies only (no test tools). better-sqlite3 is a native addon: its install
# script fetches a prebuilt binary or compiles one, so the toolchain is here, not in the final image.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# --ignore-scripts skips our own `prepare` (tsc, a dev dependency), then only better-sqlite3's
# install script runs. Optional dependencies stay (argon2's native binary is one); the benchmark
# peer (the Cerbos binary, also optional) is removed.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3 \
 && rm -rf node_modules/@cerbos

FROM node:24-bookworm-slim
# Memory for a sidecar (docs/performance.md, "Memory"): an 8 MB young-generation semi-space instead
# of Node's 16 MB and two malloc arenas instead of one per thread keep peak RSS under load ~20 MB
# lower; 4 MB saved a few MB more but let dead HTTP/2 stream state reach the old generation (GC
# pauses 1.2-3 x longer per second of load, mark-compacts under steady load). Override either in
# the pod spec.
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=8 \
    MALLOC_ARENA_MAX=2 \
    PORTCULLIS_GRPC_ADDRESS=0.0.0.0:9191 \
    PORTCULLIS_ADMIN_ADDRESS=0.0.0.0:9001 \
    PORTCULLIS_HTTP_ADDRESS=0.0.0.0:9000
WORKDIR /app
# A fixed numeric uid/gid: Kubernetes can only verify `runAsNonRoot` for a numeric USER
# (deploy/kubernetes/ sets runAsUser: 10001 to match).
RUN groupadd --system --gid 10001 portcullis && useradd --system --uid 10001 --gid portcullis --home-dir /app --shell /usr/sbin/nologin portcullis \
 && mkdir -p /app/data && chown portcullis:portcullis /app/data
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY proto ./proto
COPY policies ./policies
USER 10001:10001
# 9191 gRPC (ext_authz, health); 9000 public HTTP (token module, /health, /ready); 9001 admin HTTP (metrics, /admin).
# /app/data holds the SQLite store and, outside production, the generated KEK: mount a volume there.
EXPOSE 9191 9000 9001
# The gRPC health service reports SERVING once policies are loaded and warmed up.
# Stopping: SIGTERM drains for lifecycle.drain_seconds, then waits up to lifecycle.shutdown_timeout_seconds
# for requests in flight (5 + 10 s by default): give `docker stop` more than its 10 s (`-t 20`).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "dist/cli/main.js", "health", "--address", "127.0.0.1:9191"]
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve"]
