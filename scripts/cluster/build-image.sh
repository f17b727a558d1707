#!/usr/bin/env bash
# Build (and optionally push) the services image with a pinned version tag.
#
#   make image                                  # firedrill/services:<version>-<git sha>
#   IMAGE=registry.example/firedrill/services VERSION=1.2.3 PUSH=1 make image
#
# The tag is never "latest": deploy with `make deploy` passing --image with the printed reference.
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0; fi
cd "$(dirname "$0")/../.."

image="${IMAGE:-firedrill/services}"
base_version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n1)
sha=$(git rev-parse --short=12 HEAD 2>/dev/null || echo nogit)
version="${VERSION:-${base_version}-${sha}}"
if [ "$version" = "latest" ]; then
    echo "refusing to build the tag 'latest': pin a version" >&2
    exit 2
fi
ref="${image}:${version}"

if ! command -v docker >/dev/null 2>&1; then
    echo "docker is not installed: install Docker (or a compatible engine) to build ${ref}" >&2
    exit 2
fi
if ! docker info >/dev/null 2>&1; then
    echo "no Docker engine is reachable (docker info failed): start it to build ${ref}" >&2
    exit 2
fi

echo "[image] building ${ref}"
docker build --pull --build-arg "VERSION=${version}" --tag "${ref}" .
# The image must not run as root.
user=$(docker image inspect --format '{{.Config.User}}' "${ref}")
case "$user" in
    "" | root | 0 | 0:*) echo "image ${ref} would run as root (User='${user}')" >&2; exit 1 ;;
esac
if [ "${PUSH:-0}" = "1" ]; then
    docker push "${ref}"
fi
echo "[image] ${ref}"
echo "deploy it with: python -m scripts.cluster.deploy --image ${ref}"
