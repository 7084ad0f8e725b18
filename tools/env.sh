# Sourced by the tools/ scripts: one place for the cache locations.
export SOTTO_CACHE="${SOTTO_CACHE:-$HOME/.cache/sotto}"
export SOTTO_MODELS="${SOTTO_MODELS:-$SOTTO_CACHE/models}"
export SOTTO_VENV="${SOTTO_VENV:-$SOTTO_CACHE/venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SOTTO_CACHE/target}"
