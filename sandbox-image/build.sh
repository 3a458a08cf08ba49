#!/usr/bin/env bash
# Builds the sandbox image without any container registry:
#   debootstrap (Debian's packages) -> docker import -> Dockerfile.local on top.
# Does nothing when the image exists; --force rebuilds it (base included).
# Environment: SANDBOX_IMAGE [research-sandbox:latest], DEBIAN_MIRROR [the mirror apt uses].
set -euo pipefail

IMAGE="${SANDBOX_IMAGE:-research-sandbox:latest}"
BASE="research-sandbox-base:bookworm"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    *) echo "usage: build.sh [--force]" >&2; exit 2 ;;
  esac
done

if ! docker info >/dev/null 2>&1; then
  echo "sandbox-image: the Docker engine is not reachable (is dockerd running? is /var/run/docker.sock there?)" >&2
  exit 1
fi

if [[ $FORCE == 0 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "sandbox-image: $IMAGE is present (use --force to rebuild)"
  exit 0
fi

mirror() {
  if [[ -n "${DEBIAN_MIRROR:-}" ]]; then echo "$DEBIAN_MIRROR"; return; fi
  # The first bookworm URI apt is configured with (deb822 or one-line format).
  local uri
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1 | awk '{print $2}' || true)
  if [[ -z "$uri" ]]; then
    uri=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | grep -v security | head -n1 | awk '{print $2}' || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

if [[ $FORCE == 1 ]] || ! docker image inspect "$BASE" >/dev/null 2>&1; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    echo "sandbox-image: debootstrap is missing; install it (apt-get install -y debootstrap) or build sandbox-image/Dockerfile with a registry" >&2
    exit 1
  fi
  ROOTFS="$(mktemp -d /tmp/research-rootfs.XXXXXX)"
  trap 'rm -rf "$ROOTFS"' EXIT
  MIRROR="$(mirror)"
  echo "sandbox-image: debootstrap bookworm from $MIRROR (a few minutes)"
  debootstrap --variant=minbase \
    --include=python3,python3-pandas,python3-numpy,curl,git,coreutils,procps,ca-certificates \
    bookworm "$ROOTFS" "$MIRROR" >/tmp/research-debootstrap.log 2>&1 || {
      echo "sandbox-image: debootstrap failed; last lines of /tmp/research-debootstrap.log:" >&2
      tail -n 20 /tmp/research-debootstrap.log >&2
      exit 1
    }
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
  tar -C "$ROOTFS" -c . | docker import - "$BASE" >/dev/null
  echo "sandbox-image: imported $BASE"
fi

docker build -q -t "$IMAGE" --build-arg "BASE=$BASE" -f "$HERE/Dockerfile.local" "$HERE" >/dev/null
echo "sandbox-image: built $IMAGE"
docker run --rm --network none "$IMAGE" python3 -c 'import pandas, numpy; print("sandbox-image: python3", __import__("sys").version.split()[0], "pandas", pandas.__version__, "numpy", numpy.__version__)'
