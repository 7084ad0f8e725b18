# Sourced by the cross/ scripts: cross-compilation environment for one Rust target triple.
# Usage: . cross/env.sh aarch64-unknown-linux-gnu   (armv7 is not supported: cross/README.md)
#
# Why each variable is needed:
# - CC_/CXX_/AR_<triple>: the `cc` crate and cmake (through the `cmake` crate) compile whisper.cpp,
#   llama.cpp and the llama-cpp-2 C++ shims; without them they would use the host's x86 gcc.
# - CARGO_TARGET_<TRIPLE>_LINKER: rustc links with `cc` by default, which is the host linker.
# - BINDGEN_EXTRA_CLANG_ARGS_<triple>: bindgen parses whisper.h/llama.h with libclang; bindgen passes
#   --target itself, but clang must see the target's libc headers, not /usr/include's.
# - PKG_CONFIG_*: alsa-sys (cpal) asks pkg-config for alsa; cross queries are refused unless allowed,
#   and must read the Debian multiarch .pc files of the target, not the host's.
# - CARGO_TARGET_DIR: one target dir for all cross builds, shared with nobody else.

cross_triple="${1:?usage: . cross/env.sh <rust target triple>}"
case "$cross_triple" in
  aarch64-unknown-linux-gnu)     cross_gnu=aarch64-linux-gnu ;;
  *) echo "cross/env.sh: unsupported target '$cross_triple'" >&2; return 2 ;;
esac
cross_us="${cross_triple//-/_}"
cross_up="$(echo "$cross_us" | tr '[:lower:]' '[:upper:]')"

export "CC_${cross_us}=${cross_gnu}-gcc"
export "CXX_${cross_us}=${cross_gnu}-g++"
export "AR_${cross_us}=${cross_gnu}-ar"
export "CARGO_TARGET_${cross_up}_LINKER=${cross_gnu}-gcc"
export "BINDGEN_EXTRA_CLANG_ARGS_${cross_us}=--sysroot=/usr/${cross_gnu}"
export PKG_CONFIG_ALLOW_CROSS=1
export "PKG_CONFIG_LIBDIR_${cross_us}=/usr/lib/${cross_gnu}/pkgconfig:/usr/share/pkgconfig"
# Multiarch libraries live under /, so pkg-config paths must not be re-rooted.
export "PKG_CONFIG_SYSROOT_DIR_${cross_us}=/"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_CROSS:-$HOME/.cache/sotto/target-cross}"
# No QEMU_LD_PREFIX here: pointing qemu at the cross toolchain's /usr/<gnu> pairs its ld.so with the
# multiarch libc.so.6 and hangs every guest thread (cross/README.md); qemu runs use `-L /`.
unset QEMU_LD_PREFIX
export CROSS_TRIPLE="$cross_triple" CROSS_GNU="$cross_gnu"
