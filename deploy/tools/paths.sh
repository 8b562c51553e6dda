# Sourced by the scripts that build or fetch tools: where their results are cached.
# shellcheck shell=bash
# Outside any clone, so that every clone on the machine reuses what one of them built (a
# fresh clone's `make test` then builds nothing again); the tools are keyed by version, so
# clones at different versions do not trample each other. tests/support/cache.py agrees.
RELAY_CACHE_DIR=${RELAY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/relay}
RELAY_TOOLS_DIR=${RELAY_TOOLS_DIR:-$RELAY_CACHE_DIR/tools}
