#!/usr/bin/env bash
# Specialises the shipped Gemma 3 270M to a set of domain files: training data from the domains
# (generate.py), a LoRA fine-tune on CPU (train.py), then a GGUF LoRA adapter that the SLM worker
# loads on the Q4_K_M base (`[slm] adapter = "PATH.gguf"`). See docs/distil.md.
#
#   tools/distil/distil.sh --domains FILE.toml... --out PATH.gguf [--epochs N] [--max-minutes M]
#                          [--train N] [--threads N]
#
# Writes PATH.gguf and PATH.json (what it was trained from: each domain file's sha256, the
# generator version, example counts, the base model, training figures). Needs Python 3.11 and
# the packages below, installed into $SOTTO_DISTIL_VENV (default ~/.cache/sotto/distil-venv) on
# first use: torch (about 2.4 GB with its dependencies), transformers, peft, gguf, sentencepiece.
# The base model comes from the model store (`sotto models fetch gemma3-270m-q4_k_m`), or
# $SOTTO_DISTIL_BASE names the GGUF file.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
domains=()
out=""
epochs=1
max_minutes=60
train=2000
threads=0
while [ $# -gt 0 ]; do
  case "$1" in
    --domains) shift; while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do domains+=("$1"); shift; done; continue ;;
    --out) out="$2"; shift ;;
    --epochs) epochs="$2"; shift ;;
    --max-minutes) max_minutes="$2"; shift ;;
    --train) train="$2"; shift ;;
    --threads) threads="$2"; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "distil.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ ${#domains[@]} -gt 0 ] || { echo "distil.sh: --domains FILE.toml... is required" >&2; exit 2; }
[ -n "$out" ] || { echo "distil.sh: --out PATH.gguf is required" >&2; exit 2; }
case "$out" in *.gguf) ;; *) echo "distil.sh: --out must end in .gguf" >&2; exit 2 ;; esac
for d in "${domains[@]}"; do [ -f "$d" ] || { echo "distil.sh: domain file $d does not exist" >&2; exit 2; }; done

t0=$(date +%s)
say() { echo "[distil $(( $(date +%s) - t0 ))s] $*"; }

base="${SOTTO_DISTIL_BASE:-${SOTTO_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/sotto/models}/gemma-3-270m-q4_k_m.gguf}"
[ -f "$base" ] || { echo "distil.sh: base model $base not found (sotto models fetch gemma3-270m-q4_k_m, or set SOTTO_DISTIL_BASE)" >&2; exit 2; }

venv="${SOTTO_DISTIL_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sotto/distil-venv}"
py="$venv/bin/python"
if ! "$py" -c "import torch, transformers, peft, gguf, sentencepiece" 2>/dev/null; then
  say "installing the training packages into $venv (first use; torch is large)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet torch transformers peft gguf sentencepiece protobuf numpy safetensors
fi

# llama.cpp's LoRA converter, from the llama-cpp-python source distribution (the copy vendored
# in the Rust crate is a stub).
conv_dir="$venv/llama-cpp-python"
conv="$(ls -d "$conv_dir"/llama_cpp_python-*/vendor/llama.cpp 2>/dev/null | head -1 || true)"
if [ -z "$conv" ]; then
  say "fetching llama.cpp's convert_lora_to_gguf.py (llama-cpp-python source distribution)"
  mkdir -p "$conv_dir"
  "$venv/bin/pip" download --quiet --no-deps --no-binary llama-cpp-python llama-cpp-python==0.3.36 -d "$conv_dir"
  tar -xzf "$conv_dir"/llama_cpp_python-0.3.36.tar.gz -C "$conv_dir"
  conv="$conv_dir/llama_cpp_python-0.3.36/vendor/llama.cpp"
fi

# Kept when a step fails, so a finished training is not lost to a failed conversion.
work="$(mktemp -d "${TMPDIR:-/tmp}/sotto-distil.XXXXXX")"
trap 'echo "distil.sh: failed; the intermediate files are in $work" >&2' ERR

say "generating training data from ${#domains[@]} domain file(s)"
"$py" "$here/generate.py" --domains "${domains[@]}" --out "$work/data" --train "$train"

say "training (at most $max_minutes min)"
"$py" "$here/train.py" --model "$base" --data "$work/data" --out "$work/adapter" \
  --epochs "$epochs" --max-minutes "$max_minutes" --threads "$threads"

say "converting to a GGUF LoRA adapter"
mkdir -p "$(dirname "$out")"
PYTHONPATH="$conv/gguf-py:$conv" "$py" "$conv/convert_lora_to_gguf.py" --base "$work/adapter/base" \
  --outtype f16 --outfile "$out" "$work/adapter" 2>&1 | grep -v "^INFO:hf-to-gguf:blk\." || true
[ -s "$out" ] || { echo "distil.sh: the converter wrote no $out" >&2; exit 1; }

elapsed=$(( $(date +%s) - t0 ))
"$py" - "$out" "$work" "$base" "$elapsed" "${domains[@]}" <<'EOF'
import hashlib, json, sys
from pathlib import Path
out, work, base, elapsed, domains = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
sha = lambda p: hashlib.sha256(Path(p).read_bytes()).hexdigest()
summary = json.loads((work / "data" / "summary.json").read_text())
record = {
    "adapter": Path(out).name,
    "adapter_sha256": sha(out),
    "base_model": {"id": "gemma3-270m-q4_k_m", "file": base.name, "sha256": sha(base)},
    "generator_version": summary["generator_version"],
    "domains": [{"file": Path(d).name, "sha256": sha(d)} for d in domains],
    "examples": {"train": summary["train"], "eval": summary["eval"]},
    "training": json.loads((work / "adapter" / "train.json").read_text()),
    "wall_minutes": round(elapsed / 60, 1),
}
Path(out).with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
EOF
# The held-out split as evaluation cases (text, intent, slots), for slm_eval --cases.
"$py" -c 'import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(json.dumps({"text": r["text"], "intent": r["intent"], "slots": r["slots"]}))' \
  "$work/data/eval.jsonl" > "${out%.gguf}.eval.jsonl"
rm -rf "$work"
say "done in $((elapsed / 60)) min $((elapsed % 60)) s: $out ($(du -h "$out" | cut -f1)), ${out%.gguf}.json, held-out split ${out%.gguf}.eval.jsonl"
