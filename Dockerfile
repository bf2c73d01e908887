# The ruvector image: a small runtime stage holding only the
# `ruvector` binary on a glibc base, run as a numeric non-root user.
#
#   docker build -t ruvector .                  # compiles from source (needs a registry for the base images)
#   deploy/local-image.sh [TAG]                 # no registry: makes the base images locally, feeds a host-built binary
#
# Build arguments:
#   RUST_IMAGE     builder base with cargo (Rust >= 1.95, Debian bookworm or older glibc)
#   RUNTIME_IMAGE  runtime base: glibc and libgcc_s, nothing else needed (no shell, no TLS)
#   BINARY_FROM    "source" (default): compile in the builder stage;
#                  "context": take deploy/.image/out/ruvector from the build context,
#                  a binary already built for glibc <= 2.36 (what local-image.sh does)
#   VERSION, REVISION  recorded in the OCI labels
ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
ARG BINARY_FROM=source

# --- compile from source ----------------------------------------------------
FROM ${RUST_IMAGE} AS source
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ruvector-cli \
 && mkdir -p /out/data \
 && objcopy --strip-debug target/release/ruvector /out/ruvector

# --- or take a binary built outside (deploy/local-image.sh) -----------------
FROM scratch AS context
COPY deploy/.image/out/ /out/

FROM ${BINARY_FROM} AS binary

# --- runtime -----------------------------------------------------------------
FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="ruvector" \
      org.opencontainers.image.description="Vector database: HNSW search, SQ8/PQ quantization, crash-safe persistence, sharded mode" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/ruvector/ruvector" \
      org.opencontainers.image.documentation="https://github.com/ruvector/ruvector#readme" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=binary /out/ruvector /usr/local/bin/ruvector
# /data belongs to the runtime user, so a fresh named volume (which Docker
# fills from the image) is writable; Kubernetes volumes get fsGroup instead.
COPY --from=binary --chown=10001:10001 /out/data /data
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# PID 1 is ruvector itself: SIGTERM stops new requests, drains the
# in-flight ones and checkpoints before exiting.
ENTRYPOINT ["ruvector"]
CMD ["serve", "--addr", "0.0.0.0:8080", "--data", "/data"]
