# syntax=docker/dockerfile:1
# tes-heartbeat: one image for every command (agent, webhook, emulator, runs, demo).
# Build: docker build -t tes-heartbeat:0.1.0 .   (test/dockerfile.test.ts repeats the build
# stage's steps outside Docker, so a broken build shows up in `./dev test`.)

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY api/ api/
COPY scripts/ scripts/
COPY src/ src/
# One self-contained esbuild bundle (code-split into dist/chunks/): nothing from node_modules
# is needed at run time, so no production install to prune. The build also writes
# dist/sbom.cdx.json, the CycloneDX SBOM of the packages inside the bundle (npm sbom,
# offline, from the installed tree): scanners cannot see into the bundle.
RUN npm run build
RUN node dist/tes-heartbeat.js --version

# Distroless Node 24: no shell, no package manager; `nonroot` is uid/gid 65532.
FROM gcr.io/distroless/nodejs24-debian12:nonroot
ARG VERSION=0.1.0
ARG SOURCE=https://github.com/tes-heartbeat/tes-heartbeat
LABEL org.opencontainers.image.title="tes-heartbeat" \
      org.opencontainers.image.description="Heartbeat sidecar for TES v1 task pods on Kubernetes" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /app
# Owned by root, read-only to the process: fine under readOnlyRootFilesystem (nothing is
# written but TES_JWT_FILE, which must point into a volume). With the bundle comes its
# SBOM, at /app/sbom.cdx.json.
COPY --from=build --chown=0:0 /src/dist/ /app/
# glibc malloc, tuned for a small long-lived process (docs/performance.md): two arenas; blocks
# of 64 KiB and more mmap'd and so returned when freed (the default threshold grows to 32 MiB
# after the first large free, and such blocks then fragment the heap); free memory at the
# heap's top trimmed from 64 KiB, without padding. Under activity −9 MiB private per pod.
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=65536 \
    MALLOC_TRIM_THRESHOLD_=65536 \
    MALLOC_TOP_PAD_=0
USER 65532:65532
# Exec form: node is PID 1 and receives SIGTERM itself (every command handles it).
# A 1 MB young generation instead of V8's default 16 MB: the agent's heap is ~15 MB,
# and every task pod pays the difference (README, Performance).
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=1", "/app/tes-heartbeat.js"]
CMD ["agent"]
