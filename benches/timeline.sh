#!/usr/bin/env bash
# `vidi classify --timeline` on a long 1080p H.264 file, beside Python running the
# pipeline once per window (benches/python_timeline.py), and beside vidi on a 10 s cut
# of the same file (memory must not grow with the length).
#
#   benches/timeline.sh [--minutes M] [--model DIR] [--python PY] [--py-windows N]
#
# Defaults: 10 minutes, the tiny committed model tests/fixtures/models/videomae_meanpool
# (4 frames, so decoding and preprocessing dominate), /work/pyref/bin/python, 12 Python
# windows spread over the file. The clips are made once with the ffmpeg CLI (libx264)
# from the committed mmaction2_demo.mp4, looped and scaled to 1920x1080 at 30 fps, under
# /tmp/vidi-bench. Needs GNU time (/usr/bin/time) for vidi's peak RSS.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
minutes=10; model="$root/tests/fixtures/models/videomae_meanpool"; py=/work/pyref/bin/python; pywin=12
while [[ $# -gt 0 ]]; do
  case $1 in
    --minutes) minutes=$2; shift 2;; --model) model=$2; shift 2;;
    --python) py=$2; shift 2;; --py-windows) pywin=$2; shift 2;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done
out=/tmp/vidi-bench; mkdir -p "$out"
long="$out/h264_1080p_${minutes}min.mp4"; short="$out/h264_1080p_10s.mp4"
src="$root/tests/fixtures/clips/mmaction2_demo.mp4"
if [[ ! -f $long ]]; then
  ffmpeg -v error -nostdin -y -stream_loop -1 -i "$src" -an -t $((minutes * 60)) \
    -vf "scale=1920:1080:flags=bicubic,format=yuv420p" -r 30 \
    -c:v libx264 -preset veryfast -crf 23 -g 60 "$long.tmp.mp4" && mv "$long.tmp.mp4" "$long"
fi
[[ -f $short ]] || ffmpeg -v error -nostdin -y -i "$long" -frames:v 300 -c copy "$short"
# VIDI=path/to/vidi uses that binary (default: a release build, made if missing).
vidi=${VIDI:-"$root/target/release/vidi"}
[[ -x $vidi ]] || (cd "$root" && cargo build --release --quiet)
run_vidi() { # FILE -> "windows seconds rss_kib"
  local t; t=$(mktemp)
  /usr/bin/time -f "%e %M" -o "$t" "$vidi" classify --timeline --json --device cpu --model "$model" "$1" \
    2>/dev/null > "$t.json"
  local w; w=$(python3 -c "import json,sys; print(len(json.load(open('$t.json'))[0]['timeline']))")
  echo "$w $(cat "$t")"; rm -f "$t" "$t.json"
}
read -r lw ls lr < <(run_vidi "$long")
read -r sw ss sr < <(run_vidi "$short")
printf "| run | file | windows | seconds | windows/s | peak RSS |\n|---|---|---|---|---|---|\n"
awk -v w="$lw" -v s="$ls" -v r="$lr" -v f="${minutes} min 1080p" 'BEGIN{printf "| vidi --timeline | %s | %d | %.1f | %.1f | %.0f MiB |\n", f, w, s, w/s, r/1024}'
awk -v w="$sw" -v s="$ss" -v r="$sr" 'BEGIN{printf "| vidi --timeline | 10 s 1080p | %d | %.1f | %.1f | %.0f MiB |\n", w, s, w/s, r/1024}'
if "$py" -c "import torch, transformers, av" 2>/dev/null; then
  for f in "$long" "$short"; do
    j=$("$py" "$root/benches/python_timeline.py" "$f" --model "$model" --windows "$pywin" --json)
    python3 - "$j" "$f" <<'PY'
import json, sys
j = json.loads(sys.argv[1]); name = "10 s 1080p" if "10s" in sys.argv[2] else "long 1080p"
print(f"| Python, pipeline per window ({j['windows']} spread) | {name} | {j['windows']} | {j['seconds']:.1f} | {j['windows_per_s']:.2f} | {j['peak_rss_bytes'] / 2**20:.0f} MiB |")
PY
  done
else
  echo "(no Python side: $py lacks torch/transformers/av; see tests/fixtures/requirements.txt)"
fi
