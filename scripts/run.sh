#!/usr/bin/env bash
# Builds vidi (release) and runs it. Arguments go to vidi; with none, it runs
# the offline demo (synthetic motion videos -> fine-tune a tiny VideoMAE on the
# CPU -> evaluate; about a minute) and previews the guide's training
# augmentation on a bundled UCF101 clip.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[[ -f "$HOME/.cargo/env" ]] && . "$HOME/.cargo/env"
cargo build --release --quiet
if [[ $# -eq 0 ]]; then
  out=vidi-demo
  n=1
  while [[ -e "$out" ]]; do n=$((n + 1)); out="vidi-demo-$n"; done
  target/release/vidi demo --out "$out"
  clip=tests/fixtures/clips/v_ApplyEyeMakeup_g01_c01.avi
  target/release/vidi preview "$clip" --preset train --seed 0 --out vidi-preview.gif --strip vidi-preview.png
  echo "Demo run: $out (confusion matrix: $out/run/test-eval/confusion.png)."
  echo "Augmentation preview: vidi-preview.gif, vidi-preview.png. 'target/release/vidi --help' lists everything."
else
  exec target/release/vidi "$@"
fi
