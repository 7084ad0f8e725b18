#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set-up (packages, build, models), the style gates,
# then every test.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$here/tools/env.sh"
bash "$here/tools/setup.sh"
cd "$here"
printf '\n== cargo fmt --check\n' >&2
cargo fmt --all --check
# Release profile: clippy reuses the native engines (whisper.cpp, llama.cpp) the release build made.
printf '\n== cargo clippy (release, all targets, warnings are errors)\n' >&2
cargo clippy --release --workspace --all-targets -- -D warnings
printf '\n== cargo test\n' >&2
cargo test --release --workspace
