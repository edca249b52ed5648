#!/usr/bin/env bash
# Writes the benchmark clips that are too big to commit.
#
#   benches/make_bench_clips.sh [OUT_DIR]        (default OUT_DIR: /tmp/vidi-bench)
#
# OUT_DIR/h264_640x480_300f.mp4: H.264 (High, yuv420p, CRF 20, GOP 60, 2 B-frames),
#   640x480, 30 fps, 300 frames (10 s), no audio, made from the committed
#   tests/fixtures/clips/mmaction2_demo.mp4 (looped, every source frame kept once,
#   retimed to 30 fps, bicubic-scaled 340x256 -> 640x480).
# The 320x240 MPEG-4 ASP (xvid) case needs no file here: it is the committed
# tests/fixtures/clips/v_ApplyEyeMakeup_g01_c01.avi.
#
# Needs the ffmpeg CLI with libx264. Made by this script; re-running it overwrites the files.
set -euo pipefail

out=${1:-/tmp/vidi-bench}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src="$root/tests/fixtures/clips/mmaction2_demo.mp4"
[[ -f "$src" ]] || { echo "missing $src" >&2; exit 1; }
command -v ffmpeg >/dev/null || { echo "ffmpeg CLI not found" >&2; exit 1; }
mkdir -p "$out"

dst="$out/h264_640x480_300f.mp4"
ffmpeg -v error -nostdin -y -stream_loop 1 -i "$src" -an \
  -vf "setpts=N/(30*TB),scale=640:480:flags=bicubic,format=yuv420p" -r 30 -frames:v 300 \
  -c:v libx264 -profile:v high -preset medium -crf 20 -g 60 -bf 2 -movflags +faststart \
  "$dst"

echo "$dst: $(ffprobe -v error -count_frames -select_streams v:0 \
  -show_entries stream=codec_name,width,height,avg_frame_rate,nb_read_frames -of csv=p=0 "$dst")"
