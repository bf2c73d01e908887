# The ruvector image: a builder stage compiles from source, a small runtime
# stage holds only the `ruvector` binary on a glibc base and runs it as a
# numeric non-root user.
#
#   docker build -t ruvector .      # with a registry: public base images
#   deploy/local-image.sh [TAG]     # without one: makes both base images locally
#                                   # and builds this same file
#
# Build arguments:
#   RUST_IMAGE     builder: cargo and rustc >= 1.95 and a C compiler, on Debian
#                  bookworm (the binary links glibc 2.36, which the runtime holds)
#   RUNTIME_IMAGE  runtime: glibc and libgcc_s; no shell, no CA certificates
#                  (ruvector speaks plain HTTP; put TLS in a proxy or mesh)
#   VERSION, REVISION  recorded in the OCI labels
ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
COPY . .
# Debug info is left out and symbols stripped: the image stays small and
# panics still print their message and location.
RUN CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=debuginfo \
    cargo build --release --locked -p ruvector-cli \
 && mkdir -p /out/volume/data \
 && cp target/release/ruvector /out/ruvector

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
COPY --from=builder /out/ruvector /usr/local/bin/ruvector
# /data belongs to the runtime user, so a fresh named or anonymous volume
# (which Docker fills from the image) is writable. Copying the directory's
# parent is what makes --chown apply to /data itself.
COPY --from=builder --chown=10001:10001 /out/volume/ /
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# PID 1 is ruvector itself: SIGTERM stops new requests, drains the
# in-flight ones and checkpoints before exiting.
ENTRYPOINT ["ruvector"]
CMD ["serve", "--addr", "0.0.0.0:8080", "--data", "/data"]
