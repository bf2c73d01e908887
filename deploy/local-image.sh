#!/usr/bin/env bash
# Builds the ruvector image on a machine that cannot pull from any registry
# (this project's CI machines): makes the runtime base image locally from
# Debian packages, compiles the binary on the host, and builds the real
# top-level Dockerfile with BINARY_FROM=context, so the runtime stage, user,
# entrypoint and defaults are exactly what `docker build -t ruvector .` gives.
#
#   deploy/local-image.sh [TAG]      # default tag ruvector:local
#
# Needs: docker (BuildKit, built into Docker >= 18.09), cargo, apt-get and
# dpkg-deb from a Debian bookworm host (the binary must not need a newer
# glibc than the base holds). Environment:
#   RUVECTOR_RUNTIME_BASE  base image name to make or reuse
#                          (default ruvector-base/runtime:bookworm)
#   RUVECTOR_REBUILD_BASE=1  remake the base even if it exists
set -euo pipefail

tag=${1:-ruvector:local}
root=$(cd "$(dirname "$0")/.." && pwd)
base=${RUVECTOR_RUNTIME_BASE:-ruvector-base/runtime:bookworm}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

log() { printf '[local-image] %s\n' "$*" >&2; }

# --- 1. The runtime base: glibc + libgcc_s + passwd/group/nsswitch, no shell.
# The same content as gcr.io/distroless/cc-debian12, made from the host's
# Debian archive.
make_base() {
  log "making base image $base from Debian packages"
  local debs="$work/debs" rootfs="$work/rootfs"
  mkdir -p "$debs" "$rootfs"
  if ! (cd "$debs" && apt-get download libc6 libgcc-s1 >/dev/null 2>&1); then
    log "apt-get download failed; updating the package lists"
    local sudo=""
    if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then sudo=sudo; fi
    $sudo apt-get update -qq
    (cd "$debs" && apt-get download libc6 libgcc-s1)
  fi
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$rootfs"; done
  # Nothing of ruvector uses iconv modules, locales or documentation.
  rm -rf "$rootfs"/usr/share "$rootfs"/usr/lib/x86_64-linux-gnu/gconv "$rootfs"/usr/libexec
  mkdir -p "$rootfs"/etc "$rootfs"/tmp "$rootfs"/data
  chmod 1777 "$rootfs"/tmp
  cat > "$rootfs"/etc/passwd <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
ruvector:x:10001:10001:ruvector:/data:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
EOF
  cat > "$rootfs"/etc/group <<'EOF'
root:x:0:
ruvector:x:10001:
nogroup:x:65534:
EOF
  # getaddrinfo: /etc/hosts, then DNS (compose service names, StatefulSet
  # pod names).
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$rootfs"/etc/nsswitch.conf
  tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -c . \
    | docker import --message "ruvector runtime base (glibc, libgcc_s)" - "$base" >/dev/null
}

if [ "${RUVECTOR_REBUILD_BASE:-0}" = 1 ] || ! docker image inspect "$base" >/dev/null 2>&1; then
  make_base
else
  log "reusing base image $base"
fi

# --- 2. The binary, built on the host (release profile, debug info stripped).
log "building the ruvector binary"
(cd "$root" && cargo build --release --locked -p ruvector-cli)
target_dir=$(cd "$root" && cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
out="$root/deploy/.image/out"
rm -rf "$out"
mkdir -p "$out/data"
objcopy --strip-debug "$target_dir/release/ruvector" "$out/ruvector"

# --- 3. The real Dockerfile. RUST_IMAGE is pointed at the local base so that
# nothing names a remote image (the `source` stage is not built).
log "building $tag"
revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
DOCKER_BUILDKIT=1 docker build \
  --build-arg BINARY_FROM=context \
  --build-arg RUNTIME_IMAGE="$base" \
  --build-arg RUST_IMAGE="$base" \
  --build-arg VERSION="$version" \
  --build-arg REVISION="$revision" \
  -t "$tag" "$root"
log "built $tag ($(docker image inspect -f '{{.Size}}' "$tag") bytes)"
