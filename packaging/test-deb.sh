#!/usr/bin/env bash
# Builds the .deb, installs it on this machine with apt-get, checks the
# installed program, and uninstalls it. Needs root (or sudo) and apt.
#
#   packaging/test-deb.sh                  # release build
#   packaging/test-deb.sh --profile dev    # quicker: the debug-profile build
#   packaging/test-deb.sh --binary PATH    # package a binary built already (scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"

desktop-file-validate packaging/vidi.desktop
echo "ok: desktop-file-validate packaging/vidi.desktop"

deb=$(packaging/build-deb.sh "$@" | tail -1)
echo "built $deb ($(du -h "$deb" | cut -f1))"
dpkg-deb --field "$deb" Depends Recommends

if dpkg -s vidi >/dev/null 2>&1; then
    echo "error: a vidi package is already installed; remove it first (apt-get remove vidi)" >&2
    exit 1
fi
trap '$sudo apt-get remove -y -q vidi >/dev/null 2>&1 || true' EXIT
$sudo apt-get install -y -q --no-install-recommends "./$deb" >/dev/null
echo "ok: apt-get install ./$deb"

[ "$(command -v vidi)" = /usr/bin/vidi ] || { echo "error: vidi is not /usr/bin/vidi" >&2; exit 1; }
/usr/bin/vidi --version
/usr/bin/vidi probe tests/fixtures/clips/v_ApplyEyeMakeup_g01_c01.avi
desktop-file-validate /usr/share/applications/vidi.desktop
test -s /usr/share/man/man1/vidi.1.gz && test -s /usr/share/man/man1/vidi-classify.1.gz
test -s /usr/share/bash-completion/completions/vidi
test -s /usr/share/icons/hicolor/scalable/apps/vidi.svg
echo "ok: installed vidi runs; desktop entry, man pages, completions and icons in place"

$sudo apt-get remove -y -q vidi >/dev/null
trap - EXIT
if [ -e /usr/bin/vidi ] || dpkg -s vidi >/dev/null 2>&1; then
    echo "error: vidi still installed after apt-get remove" >&2
    exit 1
fi
echo "ok: apt-get remove vidi"
