#!/usr/bin/env bash
# Builds the app image (the root Dockerfile: API, worker and dashboard in one image).
#   build-app-image.sh              docker build . (npm ci fetches packages from the npm registry)
#   build-app-image.sh --offline    no network at all: the build gets a copy of the repository with
#                                   this machine's npm cache in deploy/npm-cache/ and runs
#                                   `npm ci --offline` under `--network none`
# The base image (node:20-bookworm-slim) must be present or pullable: `npm run deploy:base-images`
# builds it from Debian's packages when no registry is reachable.
# An image that is present is left alone; --force rebuilds it.
# Options: --tag TAG [research-jobs:latest], --network MODE for the online build [the engine's default;
# an engine started with --bridge=none needs `host`].
set -euo pipefail

TAG="research-jobs:latest"
OFFLINE=0
FORCE=0
NETWORK=""
while (($# > 0)); do
  case "$1" in
    --offline) OFFLINE=1 ;;
    --force) FORCE=1 ;;
    --tag) TAG="${2:?--tag needs a value}"; shift ;;
    --network) NETWORK="${2:?--network needs a value}"; shift ;;
    *) echo "usage: build-app-image.sh [--offline] [--force] [--tag TAG] [--network MODE]" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "app-image: $*"; }
die() { echo "app-image: $*" >&2; exit 1; }
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (is dockerd running? is /var/run/docker.sock there?)"
if [[ $FORCE == 0 ]] && docker image inspect "$TAG" >/dev/null 2>&1; then
  say "$TAG is present (use --force to rebuild)"
  exit 0
fi
docker image inspect node:20-bookworm-slim >/dev/null 2>&1 || [[ $OFFLINE == 0 ]] ||
  die "node:20-bookworm-slim is missing and --offline pulls nothing: run npm run deploy:base-images first"

BUILD_ID="$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
# The classic builder (no BuildKit) leaves the Dockerfile's build stage behind as an untagged image.
drop_build_stage() { docker image prune -f --filter "label=research.app-image.build-stage=$BUILD_ID" >/dev/null 2>&1 || true; }

if [[ $OFFLINE == 0 ]]; then
  say "building $TAG from $ROOT"
  trap drop_build_stage EXIT
  docker build -q ${NETWORK:+--network "$NETWORK"} --build-arg "BUILD_ID=$BUILD_ID" -t "$TAG" "$ROOT" >/dev/null
  say "built $TAG"
  exit 0
fi

CACHE="$(npm config get cache 2>/dev/null || echo "$HOME/.npm")"
[[ -d "$CACHE/_cacache" ]] || die "no npm cache at $CACHE/_cacache: run npm ci once on this machine (it fills the cache)"
CONTEXT="$(mktemp -d /tmp/research-app-image.XXXXXX)"
LOG="$(mktemp /tmp/research-app-image-log.XXXXXX)"
trap 'rm -rf "$CONTEXT" "$LOG"; drop_build_stage' EXIT
# The working tree as git sees it (tracked and untracked-but-not-ignored files), so node_modules,
# dist and local state never enter the context.
git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
  (cd "$ROOT" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' _) |
  tar -C "$ROOT" --null -T - -c | tar -C "$CONTEXT" -x
mkdir -p "$CONTEXT/deploy/npm-cache"
cp -a "$CACHE/_cacache" "$CONTEXT/deploy/npm-cache/_cacache"
say "building $TAG offline (npm cache $CACHE, network none)"
if ! docker build -q --network none --build-arg "BUILD_ID=$BUILD_ID" -t "$TAG" "$CONTEXT" >"$LOG" 2>&1; then
  tail -n 30 "$LOG" >&2
  die "the offline build failed (a package missing from the npm cache? run npm ci once with the registry)"
fi
say "built $TAG"
