#!/usr/bin/env bash
# Builds vidi (release) and runs it. Arguments go to vidi; with none, it
# previews the guide's training augmentation on a bundled UCF101 clip.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[[ -f "$HOME/.cargo/env" ]] && . "$HOME/.cargo/env"
cargo build --release --quiet
if [[ $# -eq 0 ]]; then
  clip=tests/fixtures/clips/v_ApplyEyeMakeup_g01_c01.avi
  target/release/vidi probe "$clip"
  target/release/vidi preview "$clip" --preset train --seed 0 --out vidi-preview.gif --strip vidi-preview.png
  echo "Open vidi-preview.gif and vidi-preview.png; run 'target/release/vidi --help' for everything else."
else
  exec target/release/vidi "$@"
fi
