#!/usr/bin/env bash
# Installs what vidi needs on Debian 12 (bookworm) and derivatives.
#
#   scripts/setup.sh          build + run-time packages
#   scripts/setup.sh --test   also what the test suite needs (ffmpeg CLI, Xvfb, ...)
#
# As root it installs the missing packages with apt-get; otherwise it prints the
# exact apt-get line to run and exits non-zero. It never touches anything else.
set -euo pipefail

build_pkgs=(build-essential pkg-config clang libclang-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
  libavfilter-dev libavdevice-dev)
run_pkgs=(libvulkan1 mesa-vulkan-drivers libxkbcommon-x11-0 libxcursor1 libxrandr2
  libxi6 libwayland-client0 libxkbcommon0 ca-certificates)
test_pkgs=(ffmpeg xvfb xauth imagemagick xdotool desktop-file-utils dpkg-dev)

want=("${build_pkgs[@]}" "${run_pkgs[@]}")
if [[ "${1:-}" == "--test" ]]; then
  want+=("${test_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]})); then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "vidi setup: this script knows Debian/Ubuntu only; install the equivalents of: ${missing[*]}" >&2
    exit 1
  fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "vidi setup: missing system packages. Run this, then try again:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  echo "vidi setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  [[ -f "$HOME/.cargo/env" ]] && . "$HOME/.cargo/env"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "vidi setup: Rust is not installed. Install Rust 1.95 or newer with rustup (https://rustup.rs), then try again." >&2
  exit 1
fi
