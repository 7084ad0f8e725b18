#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set-up (packages, build, models), then every test.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$here/tools/env.sh"
bash "$here/tools/setup.sh"
cd "$here"
cargo test --release --workspace
