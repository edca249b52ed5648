#!/usr/bin/env python3
"""Throughput of the Python reference stack: video file -> (1, 16, 3, 224, 224) float32.

Usage (from the repository root, with the venv of tests/fixtures/requirements.txt):

    benches/make_bench_clips.sh                       # once: writes /tmp/vidi-bench/*.mp4
    /work/pyref/bin/python benches/python_decode.py [FILE ...] [--threads N] [--runs N]
                                                    [--warmup N] [--json] [--only STACK,...]

FILE defaults to tests/fixtures/clips/v_ApplyEyeMakeup_g01_c01.avi plus every
/tmp/vidi-bench/*.mp4. --threads N (default 2) sets OMP_NUM_THREADS/MKL_NUM_THREADS
before torch is imported and torch.set_num_threads(N). PyAV and decord keep their
library-default decoder threading, as the reference code uses them.

Stacks (one row per stack and file; median wall time of --runs timed runs after
--warmup untimed ones; clips_per_s = 1000 / median_ms):

  pyav_decode_only   PyAV decodes every frame of the first video stream, no pixel
                     conversion (context row; also reports frames_per_s).
  hf_pil             transformers pipeline-style: PyAV decodes all frames, 16 picked with
                     np.linspace(0, n-1, 16) over the decoded count, to_ndarray("rgb24"),
                     VideoMAEImageProcessor on the PIL path (shortest_edge 224, centre crop
                     224, 1/255, ImageNet mean/std) -> torch (1, 16, 3, 224, 224).
  hf_torchvision     the same with transformers' torchvision-backend VideoMAEImageProcessor
                     (transformers >= 5; skipped when absent).
  ptv_guide_val      the guide's val path: pytorchvideo EncodedVideo.from_path(decoder="pyav",
                     decode_audio=False).get_clip(0, 64/30) -> UniformTemporalSubsample(16) ->
                     x/255 -> Normalize(ImageNet) -> Resize((224, 224)) -> permute to
                     (1, 16, 3, 224, 224).
  decord_pil         decord VideoReader, get_batch of the same 16 linspace indices, then the
                     PIL-path processor (skipped quietly if decord does not import).

Output: a table on stdout; with --json a JSON object
{"rows": [{"stack", "file", "median_ms", "clips_per_s", ...}], "meta": {...}} instead.
Made by this script.
"""

import argparse
import glob
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILES = [str(ROOT / "tests/fixtures/clips/v_ApplyEyeMakeup_g01_c01.avi")]
STACKS = ["pyav_decode_only", "hf_pil", "hf_torchvision", "ptv_guide_val", "decord_pil"]
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
NUM_FRAMES = 16


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="*")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--json", action="store_true")
    p.add_argument("--only", default="", help="comma-separated subset of: " + ",".join(STACKS))
    return p.parse_args()


ARGS = parse_args()
# Thread settings must be in the environment before torch (and its OpenMP) loads.
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

warnings.filterwarnings("ignore")
import torchvision.transforms  # noqa: E402

try:  # pytorchvideo 0.1.5 imports a module torchvision >= 0.17 renamed
    import torchvision.transforms.functional_tensor  # noqa: F401
except ImportError:
    import torchvision.transforms._functional_tensor as _ft

    sys.modules["torchvision.transforms.functional_tensor"] = _ft

import av  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from pytorchvideo.data.encoded_video import EncodedVideo  # noqa: E402
from pytorchvideo.transforms import Normalize, UniformTemporalSubsample  # noqa: E402
from torchvision.transforms import Compose, Lambda, Resize  # noqa: E402

torch.set_num_threads(ARGS.threads)

try:
    from transformers import VideoMAEImageProcessorPil as _PilProc
    from transformers import VideoMAEImageProcessor as _TvProc
except ImportError:  # transformers 4.x: VideoMAEImageProcessor is the PIL path
    from transformers import VideoMAEImageProcessor as _PilProc

    _TvProc = None

try:
    import decord
except Exception:  # noqa: BLE001  (optional)
    decord = None

PROC_KW = dict(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224},
               do_resize=True, do_center_crop=True, do_rescale=True, rescale_factor=1 / 255,
               do_normalize=True, image_mean=MEAN, image_std=STD, resample=2)
PIL_PROC = _PilProc(**PROC_KW)
TV_PROC = _TvProc(**PROC_KW) if _TvProc is not None else None
GUIDE_VAL = Compose([
    UniformTemporalSubsample(NUM_FRAMES),
    Lambda(lambda x: x / 255.0),
    Normalize(MEAN, STD),
    Resize((224, 224)),
])


def pyav_decode_only(path):
    with av.open(path) as c:
        n = 0
        for _ in c.decode(video=0):
            n += 1
    return n


def pyav_16_rgb(path):
    with av.open(path) as c:
        frames = list(c.decode(video=0))
    idx = np.linspace(0, len(frames) - 1, NUM_FRAMES).astype(np.int64)
    return [frames[i].to_ndarray(format="rgb24") for i in idx]


def hf_pil(path):
    out = PIL_PROC(pyav_16_rgb(path), return_tensors="pt")["pixel_values"]
    return out


def hf_torchvision(path):
    return TV_PROC(pyav_16_rgb(path), return_tensors="pt")["pixel_values"]


def ptv_guide_val(path):
    video = EncodedVideo.from_path(path, decoder="pyav", decode_audio=False)
    clip = video.get_clip(0, 64 / 30)["video"]  # (C, T, H, W) float32 0..255
    video.close()
    x = GUIDE_VAL(clip)
    return x.permute(1, 0, 2, 3).unsqueeze(0)


def decord_pil(path):
    vr = decord.VideoReader(path)
    idx = np.linspace(0, len(vr) - 1, NUM_FRAMES).astype(np.int64).tolist()
    batch = vr.get_batch(idx).asnumpy()
    return PIL_PROC(list(batch), return_tensors="pt")["pixel_values"]


FUNCS = {"pyav_decode_only": pyav_decode_only, "hf_pil": hf_pil, "hf_torchvision": hf_torchvision,
         "ptv_guide_val": ptv_guide_val, "decord_pil": decord_pil}


def available(stack):
    if stack == "hf_torchvision":
        return TV_PROC is not None
    if stack == "decord_pil":
        return decord is not None
    return True


def bench(fn, path):
    for _ in range(ARGS.warmup):
        out = fn(path)
    times = []
    for _ in range(ARGS.runs):
        t0 = time.perf_counter()
        out = fn(path)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000.0, out


def main():
    files = ARGS.files or DEFAULT_FILES + sorted(glob.glob("/tmp/vidi-bench/*.mp4"))
    only = [s for s in ARGS.only.split(",") if s] or STACKS
    rows = []
    for path in files:
        for stack in only:
            if stack not in FUNCS:
                raise SystemExit(f"unknown stack {stack}")
            if not available(stack):
                continue
            ms, out = bench(FUNCS[stack], path)
            row = {"stack": stack, "file": os.path.basename(path), "median_ms": round(ms, 2),
                   "clips_per_s": round(1000.0 / ms, 2)}
            if stack == "pyav_decode_only":
                row["frames"] = out
                row["frames_per_s"] = round(out * 1000.0 / ms, 1)
            else:
                assert tuple(out.shape) == (1, NUM_FRAMES, 3, 224, 224), (stack, tuple(out.shape))
            rows.append(row)
    meta = {
        "threads": ARGS.threads, "runs": ARGS.runs, "warmup": ARGS.warmup,
        "cpu_count": os.cpu_count(), "python": sys.version.split()[0],
        "torch": torch.__version__, "transformers": transformers.__version__, "av": av.__version__,
        "decord": getattr(decord, "__version__", None) if decord else None,
        "pil_processor": type(PIL_PROC).__name__,
    }
    if ARGS.json:
        print(json.dumps({"rows": rows, "meta": meta}, indent=1))
        return
    print(f"threads={ARGS.threads} runs={ARGS.runs} (median) cpus={os.cpu_count()} "
          f"torch {torch.__version__} transformers {transformers.__version__} av {av.__version__}"
          + (f" decord {meta['decord']}" if decord else " (decord not installed)"))
    hdr = f"{'stack':<18} {'file':<34} {'median_ms':>10} {'clips/s':>8} {'frames/s':>9}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        fps = f"{r['frames_per_s']:>9.1f}" if "frames_per_s" in r else f"{'':>9}"
        print(f"{r['stack']:<18} {r['file']:<34} {r['median_ms']:>10.2f} {r['clips_per_s']:>8.2f} {fps}")


if __name__ == "__main__":
    main()
