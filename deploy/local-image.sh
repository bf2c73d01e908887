#!/usr/bin/env bash
# Builds the ruvector image on a machine that cannot pull from any registry
# (this project's CI machines). It makes the two base images the top-level
# Dockerfile names, then builds that same Dockerfile with them, so the
# image is compiled from source in its builder stage exactly as
# `docker build -t ruvector .` does with public base images:
#
#   ruvector-base/rust:bookworm     debootstrap'ed Debian bookworm (minbase +
#                                   gcc, libc6-dev) carrying the host's Rust
#                                   toolchain (rustc's sysroot, >= 1.95) and
#                                   the host's CA bundle
#   ruvector-base/runtime:bookworm  glibc + libgcc_s from Debian packages,
#                                   /etc/passwd, group and nsswitch.conf; no
#                                   shell (what distroless/cc-debian12 holds)
#
#   deploy/local-image.sh [TAG]       # default tag ruvector:local
#
# Base images are made once and reused (RUVECTOR_REBUILD_BASE=1 remakes
# them). Needs root (or sudo) for debootstrap, apt-get, dpkg-deb, docker and
# rustc on the host. The builder stage downloads crates from crates.io.
set -euo pipefail

tag=${1:-ruvector:local}
root=$(cd "$(dirname "$0")/.." && pwd)
rust_base=ruvector-base/rust:bookworm
runtime_base=ruvector-base/runtime:bookworm
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d)
sudo=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then sudo=sudo; fi
cleanup() { $sudo rm -rf "$work"; }
trap cleanup EXIT

log() { printf '[local-image] %s\n' "$*" >&2; }

need_base() {
  [ "${RUVECTOR_REBUILD_BASE:-0}" = 1 ] || ! docker image inspect "$1" >/dev/null 2>&1
}

# --- the runtime base --------------------------------------------------------
make_runtime_base() {
  log "making $runtime_base from Debian packages"
  local debs="$work/debs" rootfs="$work/runtime"
  mkdir -p "$debs" "$rootfs"
  if ! (cd "$debs" && apt-get download libc6 libgcc-s1 >/dev/null 2>&1); then
    log "apt-get download failed; updating the package lists"
    $sudo apt-get update -qq
    (cd "$debs" && apt-get download libc6 libgcc-s1)
  fi
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$rootfs"; done
  # Nothing of ruvector uses iconv modules, locales or documentation.
  rm -rf "$rootfs"/usr/share "$rootfs"/usr/lib/x86_64-linux-gnu/gconv "$rootfs"/usr/libexec
  mkdir -p "$rootfs"/etc "$rootfs"/tmp
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
  # getaddrinfo looks in /etc/hosts, then DNS: compose service names and
  # StatefulSet pod names resolve.
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$rootfs"/etc/nsswitch.conf
  tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -c . \
    | docker import --message "ruvector runtime base (glibc, libgcc_s)" - "$runtime_base" >/dev/null
}

# --- the builder base --------------------------------------------------------
make_rust_base() {
  local sysroot version rootfs="$work/rust"
  sysroot=$(rustc --print sysroot)
  version=$(rustc --version)
  log "making $rust_base: debootstrap $suite + $version"
  command -v debootstrap >/dev/null || {
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends debootstrap
  }
  $sudo debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  $sudo rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc "$rootfs"/usr/share/man
  # The host's CA trust store: where crates.io is reached through a
  # TLS-inspecting proxy (as on this project's CI machines), the proxy's CA
  # is trusted by the host and must be by cargo in the builder too.
  $sudo cp /etc/ssl/certs/ca-certificates.crt "$rootfs"/etc/ssl/certs/ca-certificates.crt
  # The toolchain without its documentation (share/).
  $sudo mkdir -p "$rootfs"/usr/local/rust
  $sudo cp -a "$sysroot"/bin "$sysroot"/lib "$rootfs"/usr/local/rust/
  $sudo tar --numeric-owner -C "$rootfs" -c . \
    | docker import \
        --change 'ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV CARGO_HOME=/usr/local/cargo' \
        --message "ruvector builder base ($version)" - "$rust_base" >/dev/null
}

if need_base "$runtime_base"; then make_runtime_base; else log "reusing $runtime_base"; fi
if need_base "$rust_base"; then make_rust_base; else log "reusing $rust_base"; fi

# --- the image -----------------------------------------------------------------
revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
log "building $tag from $root/Dockerfile"
docker build --force-rm \
  --build-arg RUST_IMAGE="$rust_base" \
  --build-arg RUNTIME_IMAGE="$runtime_base" \
  --build-arg VERSION="$version" \
  --build-arg REVISION="$revision" \
  -t "$tag" "$root"
log "built $tag: $(docker image inspect -f '{{.Size}}' "$tag") bytes"
