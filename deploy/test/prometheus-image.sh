#!/usr/bin/env bash
# CI only: a stand-in for the prom/prometheus image, which cannot be pulled
# on a machine without a registry. It wraps the host's Debian `prometheus`
# binary (glibc only) on the runtime base that deploy/local-image.sh makes,
# with the official image's layout (binary on PATH as the entrypoint, data
# in /prometheus owned by nobody), so the compose `monitoring` profile's
# Prometheus service runs as written.
#
#   deploy/test/prometheus-image.sh [TAG]   # default ruvector-ci/prometheus:local
set -euo pipefail
tag=${1:-ruvector-ci/prometheus:local}
base=ruvector-base/runtime:bookworm
binary=$(command -v prometheus) || { echo "prometheus not installed (apt-get install prometheus)" >&2; exit 1; }
docker image inspect "$base" >/dev/null 2>&1 || { echo "run deploy/local-image.sh first (it makes $base)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$binary" "$work/prometheus"
mkdir -p "$work/volume/prometheus"
cat > "$work/Dockerfile" <<DOCKERFILE
FROM $base
COPY prometheus /bin/prometheus
COPY --chown=65534:65534 volume/ /
USER 65534:65534
WORKDIR /prometheus
VOLUME ["/prometheus"]
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
DOCKERFILE
docker build -q -t "$tag" "$work" >/dev/null
echo "$tag"
