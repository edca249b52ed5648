#!/usr/bin/env python3
"""The Python side of benches/timeline.sh: the transformers pipeline's recipe run once per window.

    /work/pyref/bin/python benches/python_timeline.py FILE --model DIR [--rate R] [--stride S]
                                                      [--windows N] [--json]

For each window start (k * S, every k with start + span <= frames; span = num_frames x R),
as transformers' video-classification pipeline reads a video: PyAV opens the file and
decodes from the start until the last wanted frame, keeping the frames at
start + np.linspace(0, span - 1, num_frames).astype(int64) (to_ndarray("rgb24")); the
checkpoint's image processor; the model; softmax. --windows N times only N windows spread
evenly over the video (the pipeline has no way to start anywhere but the start, so each
window decodes from frame 0: the cost grows with the window's position). Frames are
counted first, untimed. Prints windows/s and the peak RSS (ru_maxrss) of this process.
"""

import argparse
import json
import resource
import time

import av
import numpy as np
import torch
from transformers import AutoImageProcessor, AutoModelForVideoClassification


def frames_at(path, wanted):
    wanted = sorted(set(wanted))
    last = wanted[-1]
    keep = {}
    with av.open(path) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in wanted:
                keep[i] = f.to_ndarray(format="rgb24")
            if i >= last:
                break
    return keep


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--model", required=True)
    ap.add_argument("--rate", type=int, default=1)
    ap.add_argument("--stride", type=int, default=None)
    ap.add_argument("--windows", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    proc = AutoImageProcessor.from_pretrained(a.model)
    model = AutoModelForVideoClassification.from_pretrained(a.model).eval()
    n = model.config.num_frames
    span = n * a.rate
    stride = a.stride or span
    with av.open(a.file) as c:
        total = sum(1 for _ in c.decode(video=0))
    starts = list(range(0, total - span + 1, stride)) or [0]
    if a.windows and a.windows < len(starts):
        pick = np.linspace(0, len(starts) - 1, a.windows).astype(np.int64)
        starts = [starts[i] for i in pick]
    offsets = np.linspace(0, span - 1, num=n).astype(np.int64)
    t0 = time.perf_counter()
    tops = []
    for s in starts:
        idx = [s + int(o) for o in offsets]
        got = frames_at(a.file, idx)
        video = [got[i] for i in idx]
        inputs = proc(list(video), return_tensors="pt")
        with torch.no_grad():
            p = model(**inputs).logits.softmax(-1)[0]
        tops.append(int(p.argmax()))
    secs = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = {"windows": len(starts), "frames": total, "seconds": secs, "windows_per_s": len(starts) / secs,
           "peak_rss_bytes": rss, "torch": torch.__version__}
    print(json.dumps(out) if a.json else
          f"{len(starts)} windows in {secs:.1f} s: {len(starts) / secs:.2f} windows/s, peak RSS {rss / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
