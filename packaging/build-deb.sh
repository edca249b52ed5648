#!/usr/bin/env bash
# Builds the Debian package: target/debian/vidi_<version>_<arch>.deb
#
#   packaging/build-deb.sh                  # cargo build --release, then package
#   packaging/build-deb.sh --profile dev    # package the debug-profile build (quicker, bigger)
#   packaging/build-deb.sh --binary PATH    # package a vidi binary built already (the test suite's)
#
# Needs dpkg-dev (dpkg-shlibdeps) and the build dependencies of scripts/setup.sh.
# The package holds the binary, the desktop entry, the icons, the man pages and
# the bash/zsh/fish completions; its Depends come from the libraries the binary
# links (dpkg-shlibdeps: Debian 12's FFmpeg 5.1 runtime) plus those the window
# loads at run time.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
bin=""
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile="$2"; shift 2 ;;
        --binary) bin="$2"; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "error: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done
for tool in dpkg-deb dpkg-shlibdeps strip gzip; do
    command -v "$tool" >/dev/null || { echo "error: $tool is missing: apt-get install dpkg-dev binutils" >&2; exit 1; }
done

if [ -z "$bin" ]; then
    cargo build --locked --profile "$profile" --bin vidi
    bin="target/$([ "$profile" = dev ] && echo debug || echo "$profile")/vidi"
fi
[ -x "$bin" ] || { echo "error: $bin is not an executable" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
install -Dm755 "$bin" "$root/usr/bin/vidi"
strip --strip-debug "$root/usr/bin/vidi"
install -Dm644 packaging/vidi.desktop "$root/usr/share/applications/vidi.desktop"
install -Dm644 assets/icons/vidi.svg "$root/usr/share/icons/hicolor/scalable/apps/vidi.svg"
for s in 16 24 32 48 64 128 256 512; do
    install -Dm644 "assets/icons/vidi-$s.png" "$root/usr/share/icons/hicolor/${s}x${s}/apps/vidi.png"
done
mkdir -p "$root/usr/share/man/man1"
"$bin" man --out "$root/usr/share/man/man1" >/dev/null
gzip -9n "$root"/usr/share/man/man1/*.1
"$bin" completions bash | install -Dm644 /dev/stdin "$root/usr/share/bash-completion/completions/vidi"
"$bin" completions zsh | install -Dm644 /dev/stdin "$root/usr/share/zsh/vendor-completions/_vidi"
"$bin" completions fish | install -Dm644 /dev/stdin "$root/usr/share/fish/vendor_completions.d/vidi.fish"
install -Dm644 README.md "$root/usr/share/doc/vidi/README.md"
cat > "$root/usr/share/doc/vidi/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: vidi
License: Apache-2.0
Files: *
License: Apache-2.0
 On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.
COPYRIGHT

# Depends: what the binary links (FFmpeg, libc, ...), as dpkg-shlibdeps reads it.
mkdir -p "$stage/debian"
printf 'Source: vidi\n\nPackage: vidi\nArchitecture: any\n' > "$stage/debian/control"
shlibs=$(cd "$stage" && dpkg-shlibdeps -O "root/usr/bin/vidi" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
# The window loads these with dlopen, so dpkg-shlibdeps cannot see them.
window="libvulkan1, libxkbcommon0, libxkbcommon-x11-0, libx11-6, libxcursor1, libxrandr2, libxi6, libwayland-client0"
size=$(du -sk "$root" | cut -f1)
mkdir -p "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<CONTROL
Package: vidi
Version: $version
Architecture: $arch
Maintainer: vidi developers <vidi@localhost>
Installed-Size: $size
Depends: $shlibs, $window
Recommends: mesa-vulkan-drivers, xdg-desktop-portal-gtk | zenity
Suggests: ffmpeg
Section: video
Priority: optional
Description: fine-tune and run video classifiers on your own videos
 vidi loads a folder of clips, previews the training augmentations,
 fine-tunes a pretrained video transformer (VideoMAE, TimeSformer, ViViT,
 V-JEPA 2, VideoPrism), evaluates it and classifies new videos by
 drag-and-drop, as a desktop app
 and a command line. Models are read and written in the Hugging Face
 transformers layout.
CONTROL
mkdir -p target/debian
out="target/debian/vidi_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "$out"
