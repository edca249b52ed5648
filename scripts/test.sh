#!/usr/bin/env bash
# Installs what the tests need (system packages included) and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
[[ -f "$HOME/.cargo/env" ]] && . "$HOME/.cargo/env"
cargo build --no-default-features --quiet
cargo test "$@"
