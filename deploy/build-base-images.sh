#!/usr/bin/env bash
# Builds the base images the root Dockerfile and docker-compose.yml name, from Debian's packages,
# for machines where no container registry is reachable (nothing can be pulled):
#   node:20-bookworm-slim   debootstrap minbase + ca-certificates + this machine's Node 20 and npm
#   redis:7-bookworm        debootstrap minbase + Debian bookworm's redis-server (7.0)
# They stand in for the official images under the same tags, with the layout the repo relies on:
# node and npm in /usr/local/bin and the user `node` (1000:1000); redis-server and redis-cli on
# PATH, the user `redis` (999:999), /data as the working directory, and an entrypoint that drops
# root to `redis` and turns protected mode off unless configured (the official image compiles it
# off: it serves other containers, not loopback).
# An image that is present is left alone; --force rebuilds both.
# Environment: NODE_BIN [the `node` on PATH; must be v20], DEBIAN_MIRROR [the mirror apt uses].
set -euo pipefail

SAY_AS="base-images"
# shellcheck source=debian-rootfs.sh
source "$(dirname "${BASH_SOURCE[0]}")/debian-rootfs.sh"

NODE_IMAGE="node:20-bookworm-slim"
REDIS_IMAGE="redis:7-bookworm"
parse_force "$@"
require_docker

wanted=()
for image in "$NODE_IMAGE" "$REDIS_IMAGE"; do
  if [[ $FORCE == 0 ]] && image_present "$image"; then say "$image is present (use --force to rebuild)"; else wanted+=("$image"); fi
done
((${#wanted[@]} > 0)) || exit 0

[[ $(id -u) == 0 ]] || die "debootstrap needs root; run as root (or pull $NODE_IMAGE and $REDIS_IMAGE from a registry)"
require_debootstrap "pull $NODE_IMAGE and $REDIS_IMAGE from a registry"

WORK="$(mktemp -d /tmp/research-base-images.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
# One package cache for both runs: the second downloads only what the first did not.
mkdir -p "$WORK/debs"

bootstrap() { # <rootfs> <comma-separated extra packages>
  debian_rootfs "$1" "$2" "$WORK/debootstrap-$(basename "$1").log" --cache-dir="$WORK/debs"
}

build_node() {
  local node npm_root rootfs="$WORK/node"
  node="${NODE_BIN:-$(command -v node || true)}"
  [[ -x "$node" ]] || die "no node binary (set NODE_BIN to a Node 20 binary)"
  node="$(readlink -f "$node")"
  local version
  version="$("$node" --version)"
  [[ $version == v20.* ]] || die "$node is $version; $NODE_IMAGE needs Node 20 (set NODE_BIN to a Node 20 binary)"
  # npm ships beside node (…/bin/node → …/lib/node_modules/npm) in both Debian's and Node's layouts.
  npm_root="$(dirname "$(dirname "$node")")/lib/node_modules"
  [[ -f "$npm_root/npm/package.json" ]] || die "npm is not at $npm_root/npm (needed with $node)"
  bootstrap "$rootfs" ca-certificates
  install -m 0755 "$node" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules"
  cp -a "$npm_root/npm" "$rootfs/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  if [[ -d "$npm_root/corepack" ]]; then
    cp -a "$npm_root/corepack" "$rootfs/usr/local/lib/node_modules/corepack"
    ln -sf ../lib/node_modules/corepack/dist/corepack.js "$rootfs/usr/local/bin/corepack"
  fi
  chroot "$rootfs" groupadd --gid 1000 node
  chroot "$rootfs" useradd --uid 1000 --gid node --create-home --shell /bin/bash node
  # The binary links only glibc, libstdc++ and libgcc, which minbase has; prove it runs there.
  chroot "$rootfs" /usr/local/bin/node -e 'process.exit(0)' || die "$node does not run in a bookworm minbase"
  import_rootfs "$rootfs" "$NODE_IMAGE" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV NODE_VERSION=${version#v}" \
    --change 'CMD ["node"]'
  docker run --rm --network none "$NODE_IMAGE" sh -c 'echo "base-images: node $(node --version), npm $(npm --version)"'
}

build_redis() {
  local rootfs="$WORK/redis"
  bootstrap "$rootfs" redis-server
  # Debian gives `redis` the next free system id; the official image and deploy/k8s/redis.yaml use 999.
  chroot "$rootfs" sh -c 'groupmod --gid 999 redis && usermod --uid 999 --gid 999 redis \
    && mkdir -p /data && chown -R redis:redis /data /var/lib/redis /var/log/redis'
  install -m 0755 /dev/stdin "$rootfs/usr/local/bin/docker-entrypoint.sh" <<'ENTRYPOINT'
#!/bin/sh
# As the official image's entrypoint: `redis-server` is implied for bare flags or a .conf file,
# and root drops to `redis` (after handing it /data).
set -e
case "$1" in -*|*.conf) set -- redis-server "$@" ;; esac
if [ "$1" = redis-server ]; then
  # Protected mode refuses every non-loopback client without a password; a containerised Redis
  # serves other containers, so it is off unless the arguments or the config file set it.
  conf=""
  case "$2" in *.conf) conf="$2" ;; esac
  if ! printf '%s\n' "$@" | grep -q -- '--protected-mode' && { [ -z "$conf" ] || ! grep -qE '^[[:space:]]*protected-mode' "$conf"; }; then
    set -- "$@" --protected-mode no
  fi
  if [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' + 2>/dev/null || true
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi
exec "$@"
ENTRYPOINT
  import_rootfs "$rootfs" "$REDIS_IMAGE" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'WORKDIR /data' \
    --change 'VOLUME /data' \
    --change 'EXPOSE 6379' \
    --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
    --change 'CMD ["redis-server"]'
  docker run --rm --network none "$REDIS_IMAGE" redis-server --version | sed 's/^/base-images: /'
}

for image in "${wanted[@]}"; do
  case "$image" in
    "$NODE_IMAGE") build_node ;;
    "$REDIS_IMAGE") build_redis ;;
  esac
done
