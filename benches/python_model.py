"""PyTorch + transformers forward latency of the base-size video models, the
reference for `vidi bench model`. Random weights, float32, eval, no_grad.

    /work/pyref/bin/python benches/python_model.py --threads 2 --runs 3 [--arch videomae] [--json]
    /work/pyref/bin/python benches/python_model.py --threads 2 --runs 3 --arch vjepa2   # ViT-L, 16x256x256

Reports median seconds per forward pass (after one warm-up) and the peak
resident memory of the process (run one --arch per process for a clean
figure). Needs torch and transformers (tests/fixtures/requirements.txt).
"""
import argparse
import json
import resource
import statistics
import time

import torch
from transformers import (TimesformerConfig, TimesformerForVideoClassification, VideoMAEConfig,
                          VideoMAEForVideoClassification, VivitConfig, VivitForVideoClassification)
from transformers import VJEPA2Config, VJEPA2ForVideoClassification

ARCHS = {
    "videomae": (lambda: VideoMAEForVideoClassification(VideoMAEConfig(num_labels=400)), 16),
    "timesformer": (lambda: TimesformerForVideoClassification(TimesformerConfig(num_labels=400)), 8),
    "vivit": (lambda: VivitForVideoClassification(VivitConfig(num_labels=400)), 32),
    # ViT-L at the size of facebook/vjepa2-vitl-fpc16-256-ssv2 (16 frames of 256x256); --frames changes it.
    "vjepa2": (lambda: VJEPA2ForVideoClassification(VJEPA2Config(num_labels=400, frames_per_clip=a.frames or 16)), 16),
}
# V-JEPA 2 takes 256x256 pictures under the input name `pixel_values_videos`.
SIZES = {"vjepa2": 256}
INPUT_NAMES = {"vjepa2": "pixel_values_videos"}

ap = argparse.ArgumentParser()
ap.add_argument("--arch", choices=list(ARCHS), action="append")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--batch", type=int, default=1)
ap.add_argument("--json", action="store_true")
ap.add_argument("--frames", type=int, help="frames per clip (vjepa2 only; default 16)")
a = ap.parse_args()
torch.set_num_threads(a.threads)
rows = []
for name in a.arch or list(ARCHS):
    make, frames = ARCHS[name]
    if name == "vjepa2" and a.frames:
        frames = a.frames
    model = make().eval()
    side = SIZES.get(name, 224)
    x = torch.randn(a.batch, frames, 3, side, side)
    key = INPUT_NAMES.get(name, "pixel_values")
    with torch.no_grad():
        model(**{key: x})
        times = []
        for _ in range(a.runs):
            t = time.perf_counter()
            model(**{key: x})
            times.append(time.perf_counter() - t)
    rows.append({"arch": name, "input": list(x.shape), "median_s": statistics.median(times),
                 "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                 "attn": getattr(model.config, "_attn_implementation", None), "threads": a.threads,
                 "torch": torch.__version__})
if a.json:
    print(json.dumps({"rows": rows}, indent=1))
else:
    print(f"{'arch':<12} {'input':<22} {'median_s':>9} {'peak_MiB':>9}  attention")
    for r in rows:
        print(f"{r['arch']:<12} {str(r['input']):<22} {r['median_s']:>9.3f} {r['peak_rss_mib']:>9.0f}  {r['attn']}")
