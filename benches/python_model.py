"""PyTorch + transformers forward latency of the base-size video models, the
reference for `vidi bench model`. Random weights, float32, eval, no_grad.

    /work/pyref/bin/python benches/python_model.py --threads 2 --runs 3 [--arch videomae] [--json]

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

ARCHS = {
    "videomae": (lambda: VideoMAEForVideoClassification(VideoMAEConfig(num_labels=400)), 16),
    "timesformer": (lambda: TimesformerForVideoClassification(TimesformerConfig(num_labels=400)), 8),
    "vivit": (lambda: VivitForVideoClassification(VivitConfig(num_labels=400)), 32),
}
# VideoPrism-base: 16 x 288 x 288, input `pixel_values_videos`, eager attention (its only
# non-flash one: the soft-cap).
SIZE = {"videoprism": 288}
INPUT = {"videoprism": "pixel_values_videos"}


def _videoprism():
    from transformers import VideoPrismForVideoClassification, VideoPrismVisionConfig
    return VideoPrismForVideoClassification(VideoPrismVisionConfig(num_labels=400))


ARCHS["videoprism"] = (_videoprism, 16)

ap = argparse.ArgumentParser()
ap.add_argument("--arch", choices=list(ARCHS), action="append")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--batch", type=int, default=1)
ap.add_argument("--json", action="store_true")
a = ap.parse_args()
torch.set_num_threads(a.threads)
rows = []
for name in a.arch or list(ARCHS):
    make, frames = ARCHS[name]
    model = make().eval()
    side = SIZE.get(name, 224)
    x = torch.randn(a.batch, frames, 3, side, side)
    inputs = {INPUT.get(name, "pixel_values"): x}
    with torch.no_grad():
        model(**inputs)
        times = []
        for _ in range(a.runs):
            t = time.perf_counter()
            model(**inputs)
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
