#!/usr/bin/env bash
# The GPU check: vidi against PyTorch on this machine's GPU, in one table.
#
#   scripts/gpu-check.sh            on a Linux machine with an NVIDIA GPU (under 8 minutes)
#   scripts/gpu-check.sh --smoke    small sizes, end to end on any machine (lavapipe, PyTorch on the CPU)
#
# It builds vidi (release, headless), makes a Python venv of its own from PyPI
# (torch, transformers, safetensors, numpy) for the PyTorch side, and prints:
# the adapters and their features; the app window's device made headless;
# logits parity with the committed transformers fixtures (f32, and f16 where
# the adapter has SHADER_F16); `vidi bench model` at batch 1 and 8 and
# `vidi bench train` at batch 1, 4 and 8 beside benches/python_model.py and
# benches/python_train.py (fp32 and bf16 autocast, sdpa; and, where the adapter
# has SHADER_F16, vidi's mixed precision beside float16 autocast with a
# GradScaler for the first model), with clips/s and
# peak device memory. Each step is time-boxed; a step that would pass the
# budget is skipped and says so.
#
# Environment:
#   VIDI_BIN=path/to/vidi        use this binary, no build
#   VIDI_PYTHON=path/to/python   use this interpreter (torch + transformers), no venv
#   GPU_CHECK_OUT=dir            where the JSON and logs go (default target/gpu-check)
#   GPU_CHECK_BUDGET=seconds     the whole run's budget (default 470)
#   GPU_CHECK_FEATURES=list      cargo features of the build (default fusion,autotune)
set -uo pipefail
cd "$(dirname "$0")/.."

smoke=0
case "${1:-}" in
  --smoke) smoke=1 ;;
  "") ;;
  -h | --help) sed -n 2,24p "$0"; exit 0 ;;
  *) echo "gpu-check.sh: unknown argument '$1' (only --smoke)" >&2; exit 2 ;;
esac

out="${GPU_CHECK_OUT:-target/gpu-check}"
features="${GPU_CHECK_FEATURES:-fusion,autotune}"
budget="${GPU_CHECK_BUDGET:-470}"
mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.log "$out"/*.safetensors
start=$(date +%s)
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

left() { echo $((budget - ($(date +%s) - start))); }

# step NAME CAP COMMAND...: runs COMMAND with stdout to NAME.json and stderr to NAME.log,
# for at most CAP seconds and never past the budget; a skipped or failed step leaves a
# NAME.status line the table reports.
step() {
  local name=$1 cap=$2
  shift 2
  local secs
  secs=$(left)
  ((secs > cap)) && secs=$cap
  if ((secs < 15)); then
    echo "skipped: out of time" >"$out/$name.status"
    echo "  $name: skipped (out of time)" >&2
    return 1
  fi
  local t0 rc
  t0=$(date +%s)
  timeout -k 5 "$secs" "$@" >"$out/$name.json" 2>"$out/$name.log" </dev/null
  rc=$?
  if ((rc == 124 || rc == 137)); then
    echo "timed out after ${secs}s" >"$out/$name.status"
  elif ((rc != 0)); then
    echo "failed: $(grep -v '^warning:' "$out/$name.log" | tail -n 1)" >"$out/$name.status"
  else
    echo ok >"$out/$name.status"
  fi
  echo "  $name: $(cat "$out/$name.status") ($(($(date +%s) - t0))s)" >&2
  return $rc
}

# vidi
if [[ -n "${VIDI_BIN:-}" ]]; then
  bin="$VIDI_BIN"
  echo "vidi: $bin (given)" >&2
else
  echo "vidi: building (release, headless, features: $features)..." >&2
  [[ -f "$HOME/.cargo/env" ]] && . "$HOME/.cargo/env"
  if ! cargo build --release --no-default-features --features "$features" --bin vidi >"$out/build.log" 2>&1; then
    tail -n 20 "$out/build.log" >&2
    echo "gpu-check.sh: the build failed (scripts/setup.sh lists the system packages)" >&2
    exit 1
  fi
  bin="${CARGO_TARGET_DIR:-target}/release/vidi"
fi
[[ -x "$bin" ]] || { echo "gpu-check.sh: no vidi binary at $bin" >&2; exit 1; }

# The PyTorch side
if [[ -n "${VIDI_PYTHON:-}" ]]; then
  py="$VIDI_PYTHON"
  echo "python: $py (given)" >&2
else
  venv="$out/venv"
  if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import torch, transformers, safetensors" 2>/dev/null; then
    echo "python: making $venv (torch, transformers from PyPI)..." >&2
    python3 -m venv "$venv" || { echo "gpu-check.sh: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
    "$venv/bin/pip" install --quiet --upgrade pip >"$out/pip.log" 2>&1
    "$venv/bin/pip" install --quiet torch transformers safetensors numpy >>"$out/pip.log" 2>&1 ||
      { tail -n 5 "$out/pip.log" >&2; echo "gpu-check.sh: pip install failed" >&2; exit 1; }
  fi
  py="$venv/bin/python"
fi

if "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  torch_device=cuda
elif ((smoke)); then
  torch_device=cpu
else
  echo "gpu-check.sh: PyTorch sees no CUDA GPU here; scripts/gpu-check.sh --smoke runs the small check anyway" >&2
  exit 1
fi
threads=$(nproc)

if ((smoke)); then
  model_args=(--model tests/fixtures/models/videomae_meanpool)
  py_model_args=(--config tests/fixtures/models/videomae_meanpool)
  train_archs=(tiny)
  model_runs=3
  train_steps=2
else
  model_args=(--arch videomae)
  py_model_args=(--arch videomae)
  train_archs=(videomae timesformer vivit)
  model_runs=5
  train_steps=3
fi

echo "checks (budget ${budget}s, $(left)s left):" >&2
step adapter 60 "$bin" bench adapter --json

f16=$("$py" -c "import json,sys; d=json.load(open(sys.argv[1])); print(int(any(a['shader_f16'] for a in d['adapters'])))" "$out/adapter.json" 2>/dev/null || echo 0)
precisions=(f32)
((f16)) && precisions+=(f16)

for m in videomae_meanpool videomae_cls timesformer vivit vjepa2; do
  for p in "${precisions[@]}"; do
    step "parity_${m}_$p" 60 "$bin" forward --model "tests/fixtures/models/$m" --device gpu --precision "$p" \
      --pixel-values "tests/fixtures/models/$m/io.safetensors" --out "$out/parity_${m}_$p.safetensors"
  done
done

for b in 1 8; do
  for p in "${precisions[@]}"; do
    step "model_vidi_${p}_b$b" 120 "$bin" bench model "${model_args[@]}" --batch "$b" --runs "$model_runs" \
      --device gpu --precision "$p" --json
  done
  for d in fp32 bf16; do
    step "model_torch_${d}_b$b" 90 "$py" benches/python_model.py "${py_model_args[@]}" --batch "$b" \
      --runs "$model_runs" --device "$torch_device" --dtype "$d" --threads "$threads" --json
  done
done

for arch in "${train_archs[@]}"; do
  for b in 1 4 8; do
    step "train_vidi_${arch}_b$b" 150 "$bin" bench train --arch "$arch" --batch "$b" --steps "$train_steps" \
      --device gpu --json
    dtypes=(fp32 bf16)
    # Mixed precision, vidi's and PyTorch's (float16 autocast with a GradScaler), for the first model.
    if ((f16)) && [[ $arch == "${train_archs[0]}" ]]; then
      step "train_vidi_f16_${arch}_b$b" 150 "$bin" bench train --arch "$arch" --batch "$b" --steps "$train_steps" \
        --device gpu --precision f16 --json
      dtypes+=(fp16)
    fi
    for d in "${dtypes[@]}"; do
      step "train_torch_${d}_${arch}_b$b" 90 "$py" benches/python_train.py --arch "$arch" --batch "$b" \
        --steps "$train_steps" --device "$torch_device" --dtype "$d" --threads "$threads" --json
    done
  done
done

vidi_version=$("$bin" --version 2>/dev/null | head -n 1)
"$py" benches/gpu_check_table.py "$out" --smoke "$smoke" --elapsed "$(($(date +%s) - start))" \
  --vidi "$vidi_version ($bin)" --torch-device "$torch_device" --train-archs "${train_archs[*]}"
