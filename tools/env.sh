# Sourced by the tools/ scripts: one place for the cache locations. The model directory is the
# binary's own default ($XDG_CACHE_HOME/sotto/models, else ~/.cache/sotto/models; see
# models/src/store.rs), so what tools/setup.sh fetches is what a plain `sotto run` finds.
export SOTTO_CACHE="${SOTTO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sotto}"
export SOTTO_MODELS="${SOTTO_MODELS:-$SOTTO_CACHE/models}"
export SOTTO_VENV="${SOTTO_VENV:-$SOTTO_CACHE/venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SOTTO_CACHE/target}"
