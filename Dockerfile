# The sessionstore server: `docker build -t sessionstore .` at the repository's root.
# It runs as a numeric non-root user and writes nothing but its data directory, /data (a volume),
# so it works with a read-only root file system (Kubernetes' readOnlyRootFilesystem, `docker run
# --read-only`); test/deploy/image.test.ts runs this file's ENTRYPOINT, CMD, ENV, USER and the
# final stage's files just so. The Helm chart is deploy/helm/sessionstore.

FROM node:20-slim AS build
WORKDIR /app
# The workspace's package.json is enough for npm ci to resolve the lockfile; no install script
# is needed to build.
COPY package.json package-lock.json ./
COPY clients/ts/package.json clients/ts/
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src src
COPY gen gen
# Then only what the server needs at run time: the dependencies, without the workspace's link.
RUN npm run build && npm prune --omit=dev --workspaces=false --ignore-scripts --no-audit --no-fund

FROM node:20-slim
ENV NODE_ENV=production \
    SESSIONSTORE_LISTEN=0.0.0.0:50051 \
    SESSIONSTORE_DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist/src dist/src
COPY --from=build /app/dist/gen dist/gen
# The descriptor sets that reflection serves.
COPY --from=build /app/gen/sessionstore.binpb /app/gen/grpc-health.binpb gen/
# Owned by the user, so that a new volume there (Docker copies the image's directory into it)
# is writable; Kubernetes makes its volume writable with the pod's fsGroup.
RUN mkdir /data && chown 10001:10001 /data
VOLUME /data
# Numeric, so that Kubernetes' runAsNonRoot can check it; no account of that id is needed.
USER 10001:10001
EXPOSE 50051
# Exec form: the server is PID 1 and gets SIGTERM itself (see the README's Shutdown). On
# 0.0.0.0 it refuses to start without authentication (protected mode): pass --auth jwt or mtls,
# or --allow-unauthenticated behind a mesh that authenticates callers.
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["serve"]
