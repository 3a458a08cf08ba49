#!/usr/bin/env bash
# Builds the sandbox image without any container registry:
#   debootstrap (Debian's packages) -> docker import -> Dockerfile.local on top.
# Does nothing when the image exists; --force rebuilds it (base included).
# Environment: SANDBOX_IMAGE [research-sandbox:latest], DEBIAN_MIRROR [the mirror apt uses].
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SAY_AS="sandbox-image"
# shellcheck source=../deploy/debian-rootfs.sh
source "$HERE/../deploy/debian-rootfs.sh"

IMAGE="${SANDBOX_IMAGE:-research-sandbox:latest}"
BASE="research-sandbox-base:bookworm"
parse_force "$@"
require_docker

if [[ $FORCE == 0 ]] && image_present "$IMAGE"; then
  say "$IMAGE is present (use --force to rebuild)"
  exit 0
fi

if [[ $FORCE == 1 ]] || ! image_present "$BASE"; then
  require_debootstrap "build sandbox-image/Dockerfile with a registry"
  ROOTFS="$(mktemp -d /tmp/research-rootfs.XXXXXX)"
  trap 'rm -rf "$ROOTFS"' EXIT
  debian_rootfs "$ROOTFS" python3,python3-pandas,python3-numpy,curl,git,coreutils,procps,ca-certificates \
    /tmp/research-debootstrap.log
  import_rootfs "$ROOTFS" "$BASE"
fi

docker build -q -t "$IMAGE" --build-arg "BASE=$BASE" -f "$HERE/Dockerfile.local" "$HERE" >/dev/null
say "built $IMAGE"
docker run --rm --network none "$IMAGE" python3 -c 'import pandas, numpy; print("sandbox-image: python3", __import__("sys").version.split()[0], "pandas", pandas.__version__, "numpy", numpy.__version__)'
