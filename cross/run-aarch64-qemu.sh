#!/usr/bin/env bash
# Runs the cross-built aarch64 daemon and its workers under qemu-user on one fixture, end to end:
#   sotto run --input tests/fixtures/audio/pos_jarvis_vehicle_temp.wav   (built-in config, embedded broker)
# and checks that the climate action was published. Build first with cross/build-aarch64.sh.
#
# Usage: cross/run-aarch64-qemu.sh [WAV] [extra `sotto run` args, e.g. --config cross/qemu.toml]
# Env:   SOTTO_MODELS          host model cache (default ~/.cache/sotto/models), for the
#                              architecture-independent models (ONNX, ggml, GGUF)
#        SOTTO_MODELS_AARCH64  model dir of the aarch64 run (default ~/.cache/sotto/models-aarch64):
#                              symlinks to the above plus the aarch64 libonnxruntime.so, which the
#                              aarch64 `sotto models fetch onnxruntime` downloads (its manifest entry
#                              is chosen by std::env::consts::ARCH = aarch64 under qemu).
#        EXPECT_TOPIC_SUFFIX   topic that must be published (default /vehicle/climate/temperature);
#                              empty = no check.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
. "$here/env.sh" aarch64-unknown-linux-gnu
bin="$CARGO_TARGET_DIR/$CROSS_TRIPLE/release"
host_models="${SOTTO_MODELS:-$HOME/.cache/sotto/models}"
models="${SOTTO_MODELS_AARCH64:-$HOME/.cache/sotto/models-aarch64}"
wav="${1:-$repo/tests/fixtures/audio/pos_jarvis_vehicle_temp.wav}"; shift || true
expect="${EXPECT_TOPIC_SUFFIX-/vehicle/climate/temperature}"

command -v qemu-aarch64 >/dev/null || { echo "qemu-aarch64 missing: run cross/setup-host.sh" >&2; exit 1; }
for b in sotto sotto-stt-worker sotto-slm-worker; do
  [[ -x "$bin/$b" ]] || { echo "$bin/$b missing: run cross/build-aarch64.sh" >&2; exit 1; }
done
[[ -d "$host_models" ]] || { echo "no host model cache at $host_models: run \`sotto models fetch --profile default\`" >&2; exit 1; }

# The target's shared libraries: libc/libstdc++/libgomp under the cross prefix, libasound (multiarch)
# under /usr/lib/aarch64-linux-gnu, which the emulated loader does not search by itself.
qemu=(qemu-aarch64 -L "$QEMU_LD_PREFIX" -E "LD_LIBRARY_PATH=/usr/lib/$CROSS_GNU:/lib/$CROSS_GNU")

# Preflight: on some hosts qemu-user hangs in any guest thread creation (seen here: Firecracker VM,
# kernel 6.18, qemu 7.2 and 10.0 alike). The daemon, the workers and ONNX Runtime all create threads,
# so find that out in seconds with a 5-line pthread program instead of waiting on a silent daemon.
probe="$CARGO_TARGET_DIR/$CROSS_TRIPLE/qemu-thread-probe"
if [[ ! -x "$probe" ]]; then
  printf '#include <pthread.h>\n#include <stdio.h>\nstatic void *f(void *a) { return a; }\nint main(void) { pthread_t t; if (pthread_create(&t, 0, f, 0)) return 2; pthread_join(t, 0); puts("threads ok"); return 0; }\n' \
    | "${CROSS_GNU}-gcc" -x c - -o "$probe" -lpthread
fi
if ! timeout 20 "${qemu[@]}" "$probe" >/dev/null; then
  echo "cross/run-aarch64-qemu.sh: qemu-aarch64 cannot run a guest thread on this host (pthread probe hung or failed);" \
       "the daemon cannot run under qemu here — see cross/README.md" >&2
  exit 3
fi

# The daemon spawns its workers with execve; without a binfmt_misc handler (none in containers) the
# host kernel cannot run an aarch64 ELF, so the worker dir holds host scripts that start qemu.
wrappers="$CARGO_TARGET_DIR/$CROSS_TRIPLE/qemu-workers"
mkdir -p "$wrappers"
for w in sotto-stt-worker sotto-slm-worker; do
  printf '#!/bin/sh\nexec %s"$@"\n' "$(printf '%q ' "${qemu[@]}" "$bin/$w")" > "$wrappers/$w"
  chmod +x "$wrappers/$w"
done

# Architecture-independent models are shared with the host cache; their verification stamps record
# sha256 + size + mtime of the same (followed) file, so they stay valid and save re-hashing under qemu.
mkdir -p "$models"
for f in "$host_models"/*; do
  name="$(basename "$f")"
  [[ -f "$f" && "$name" != libonnxruntime* ]] || continue
  ln -sfn "$f" "$models/$name"
  [[ -f "$host_models/.$name.verified" ]] && cp -p "$host_models/.$name.verified" "$models/.$name.verified"
done
export SOTTO_MODELS="$models" SOTTO_WORKER_DIR="$wrappers"
if ! "${qemu[@]}" "$bin/sotto" models path onnxruntime >/dev/null 2>&1; then
  echo "== fetching the aarch64 ONNX Runtime with the aarch64 sotto" >&2
  "${qemu[@]}" "$bin/sotto" models fetch onnxruntime
fi
"${qemu[@]}" "$bin/sotto" models path onnxruntime

out="$(mktemp -d)"
echo "== qemu-aarch64 sotto run --input $wav $*" >&2
start=$(date +%s.%N)
set +e
"${qemu[@]}" "$bin/sotto" run --input "$wav" "$@" >"$out/published.jsonl" 2>"$out/stderr.log"
rc=$?
set -e
end=$(date +%s.%N)
cat "$out/published.jsonl"
echo "== exit $rc after $(echo "$end - $start" | bc) s (wall); log: $out/stderr.log" >&2
(( rc == 0 )) || { tail -30 "$out/stderr.log" >&2; exit "$rc"; }
if [[ -n "$expect" ]]; then
  if grep -q "\"topic\": *\"[^\"]*${expect}\"" "$out/published.jsonl"; then
    echo "== OK: published a *${expect} action" >&2
  else
    echo "== FAIL: nothing published on *${expect}" >&2; tail -30 "$out/stderr.log" >&2; exit 1
  fi
fi
