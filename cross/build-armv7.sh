#!/usr/bin/env bash
# Cross-builds sotto and both workers for armv7-unknown-linux-gnueabihf (see cross/README.md). Args go to cargo.
exec "$(dirname "$0")/build.sh" armv7-unknown-linux-gnueabihf "$@"
