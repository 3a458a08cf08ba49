# Sourced (not run) by deploy/build-base-images.sh and sandbox-image/build.sh: Debian bookworm
# root filesystems from debootstrap, imported into Docker, for machines where no container
# registry is reachable. The caller sets SAY_AS (the prefix of its messages) and runs under
# `set -euo pipefail`.

say() { echo "$SAY_AS: $*"; }
die() { echo "$SAY_AS: $*" >&2; exit 1; }

# Sets FORCE to 1 for --force, 0 without it; any other argument is a usage error.
parse_force() {
  FORCE=0
  for arg in "$@"; do
    case "$arg" in
      --force) FORCE=1 ;;
      *) echo "usage: $(basename "$0") [--force]" >&2; exit 2 ;;
    esac
  done
}

require_docker() {
  docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (is dockerd running? is /var/run/docker.sock there?)"
}

image_present() { docker image inspect "$1" >/dev/null 2>&1; }

# require_debootstrap <the way to go without it>
require_debootstrap() {
  command -v debootstrap >/dev/null 2>&1 || die "debootstrap is missing; install it (apt-get install -y debootstrap) or $1"
}

# DEBIAN_MIRROR, or the first bookworm URI apt is configured with (deb822 or one-line format).
debian_mirror() {
  if [[ -n "${DEBIAN_MIRROR:-}" ]]; then echo "$DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1 | awk '{print $2}' || true)
  if [[ -z "$uri" ]]; then
    uri=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | grep -v security | head -n1 | awk '{print $2}' || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

# debian_rootfs <rootfs> <comma-separated packages> <log> [debootstrap option]...
# A minbase bookworm with the packages in <rootfs>, apt's caches left out; debootstrap's output
# goes to <log>, whose last lines are shown if it fails.
debian_rootfs() {
  local rootfs="$1" packages="$2" log="$3" mirror
  shift 3
  mirror="$(debian_mirror)"
  say "debootstrap bookworm ($packages) from $mirror (a few minutes)"
  debootstrap --variant=minbase "$@" --include="$packages" bookworm "$rootfs" "$mirror" >"$log" 2>&1 || {
    echo "$SAY_AS: debootstrap failed; last lines of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
  }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
}

# import_rootfs <rootfs> <tag> [docker import --change ...]...
import_rootfs() {
  local rootfs="$1" tag="$2"
  shift 2
  tar -C "$rootfs" -c . | docker import "$@" - "$tag" >/dev/null
  say "imported $tag"
}
