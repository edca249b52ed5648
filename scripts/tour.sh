#!/usr/bin/env bash
# The README's tour, by input events on the real binary: an empty home folder,
# Xvfb, xdotool clicks from the first screen through the offline demo to its
# result, Evaluate and Classify; screenshots (ImageMagick) into assets/tour/.
#   scripts/tour.sh [path/to/vidi]     (scripts/setup.sh --test installs Xvfb, xdotool, ImageMagick)
set -euo pipefail
vidi=${1:-target/debug/vidi}
out=assets/tour
tmp=$(mktemp -d)
display=:57
mkdir -p "$out" "$tmp/home"
Xvfb "$display" -screen 0 1200x820x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
sleep 2
DISPLAY=$display HOME=$tmp/home XDG_RUNTIME_DIR=$tmp "$vidi" >"$tmp/vidi.log" 2>&1 &
app=$!
trap 'kill $app $xvfb 2>/dev/null || true; rm -rf "$tmp"' EXIT
shot() { sleep "$2"; DISPLAY=$display import -window root "$tmp/s.png"; convert "$tmp/s.png" -resize 80% -colors 128 "PNG8:$out/$1.png"; }
click() { DISPLAY=$display xdotool mousemove "$1" "$2" click 1; }
shot 1-start 8
click 175 113                  # Try the offline demo
shot 2-demo-running 60
# The demo ends with its card (a few minutes on 2 cores).
until grep -q . <(find "$tmp/home/vidi-data/vidi-demo/run/test-eval" -name report.json 2>/dev/null); do sleep 5; done
shot 3-demo-done 5
click 118 410                  # Evaluate this model
sleep 3
click 58 191                   # Run evaluation
shot 4-evaluate 30
click 387 12                   # the Train tab
sleep 2
click 243 410                  # Try it in Classify
sleep 3
click 65 340                   # Run classification
shot 5-classify 15
echo "screenshots in $out/"
