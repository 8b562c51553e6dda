# Sourced by the scripts in deploy/docker: paths and logging they share.
# shellcheck shell=bash
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Everything these scripts build or download is cached outside the clone (paths.sh), so a
# second run, from this clone or a fresh one, only checks and returns.
# shellcheck source=../tools/paths.sh
source "$REPO_ROOT/deploy/tools/paths.sh"
DOCKER_CACHE=${RELAY_DOCKER_CACHE:-$RELAY_CACHE_DIR/docker}
TOOLS_DIR=$RELAY_TOOLS_DIR
# The compose CLI plugin lives in a project-local DOCKER_CONFIG, so building it never
# touches ~/.docker or /usr/local/lib; the project's commands point DOCKER_CONFIG here.
RELAY_DOCKER_CONFIG=$TOOLS_DIR/docker
# Go builds (compose, Prometheus) use Go's own module and build caches, as helm and
# promtool do (deploy/tools): shared by every clone on the machine, so a fresh clone
# recompiles nothing that an earlier one built (cold: minutes; warm: seconds).
export GOFLAGS="-buildvcs=false"
# The local toolchain: go.mod's toolchain line must not trigger a toolchain download.
export GOTOOLCHAIN=local

log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "$*"; exit 1; }

# image_exists TAG [LABEL_VALUE]: true if TAG is in the engine's store (and, when a value is
# given, carries it as relay.recipe, so a changed recipe rebuilds the image).
image_exists() {
  local found
  found=$(docker image inspect --format '{{ index .Config.Labels "relay.recipe" }}' "$1" 2>/dev/null) || return 1
  [[ -z ${2:-} || $found == "$2" ]]
}

# compose_image SERVICE: the image: docker-compose.yml names for a service, e.g. apache/kafka:4.1.0.
compose_image() {
  awk -v svc="  $1:" '
    $0 == svc { inside = 1; next }
    inside && /^  [^ ]/ { exit }
    inside && $1 == "image:" { print $2; exit }
  ' "$REPO_ROOT/docker-compose.yml"
}
