# syntax=docker/dockerfile:1
# Build: compile TypeScript with every dependency present.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm ci --no-audit --no-fund

# Production dependencies only (no compiler, no test tools).
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=optional leaves out benchmark peers (the Cerbos binary).
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    PORTCULLIS_GRPC_ADDRESS=0.0.0.0:9191 \
    PORTCULLIS_ADMIN_ADDRESS=0.0.0.0:9001
WORKDIR /app
RUN groupadd --system portcullis && useradd --system --gid portcullis --home-dir /app --shell /usr/sbin/nologin portcullis \
 && mkdir -p /app/data && chown portcullis:portcullis /app/data
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY proto ./proto
COPY policies ./policies
USER portcullis
# 9191 gRPC (ext_authz, health); 9000 public HTTP and 9001 admin HTTP (token module, metrics).
EXPOSE 9191 9000 9001
# The gRPC health service reports SERVING once policies are loaded and warmed up.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "dist/cli/main.js", "health", "--address", "127.0.0.1:9191"]
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve"]
