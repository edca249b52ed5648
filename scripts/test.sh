#!/usr/bin/env bash
# Installs what the tests need (system packages included) and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
[[ -f "$HOME/.cargo/env" ]] && . "$HOME/.cargo/env"
# A one-shot build gains nothing from incremental state (about 0.5 GB on disk).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# The headless library and CLI (no desktop app) must build too.
cargo check --no-default-features --quiet
cargo test "$@"
# The Debian package, from the binary the tests just built: install, run, remove.
if [[ $# -eq 0 ]]; then
  if [[ $(id -u) -eq 0 ]]; then
    packaging/test-deb.sh --binary target/debug/vidi
  else
    echo "test.sh: the .deb install check needs root; run it with: sudo packaging/test-deb.sh" >&2
  fi
fi
