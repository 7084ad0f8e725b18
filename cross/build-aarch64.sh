#!/usr/bin/env bash
# Cross-builds sotto and both workers for aarch64-unknown-linux-gnu (see cross/README.md). Args go to cargo.
exec "$(dirname "$0")/build.sh" aarch64-unknown-linux-gnu "$@"
