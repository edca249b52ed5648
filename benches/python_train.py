"""PyTorch + transformers training-step time, the reference for `vidi bench train`.

One step = forward, cross-entropy, backward, clip_grad_norm_(1.0), AdamW step
(what the Trainer does per step), random weights and inputs, float32, CPU.

    /work/pyref/bin/python benches/python_train.py --threads 2 --steps 3 --batch 1 [--arch videomae|timesformer|vivit|tiny] [--json]

Reports the median seconds per step after one warm-up step, clips/s and the
peak resident memory (run one --arch per process for a clean figure). Needs
torch and transformers (tests/fixtures/requirements.txt).
"""
import argparse
import json
import resource
import statistics
import time

import torch
from transformers import (TimesformerConfig, TimesformerForVideoClassification, VideoMAEConfig,
                          VideoMAEForVideoClassification, VivitConfig, VivitForVideoClassification)

TINY = dict(image_size=32, patch_size=8, num_frames=8, tubelet_size=2, hidden_size=64, num_hidden_layers=2,
            num_attention_heads=4, intermediate_size=128, use_mean_pooling=True, num_labels=6)
ARCHS = {
    "videomae": (lambda: VideoMAEForVideoClassification(VideoMAEConfig(num_labels=400)), 16, 224),
    "timesformer": (lambda: TimesformerForVideoClassification(TimesformerConfig(num_labels=400)), 8, 224),
    "vivit": (lambda: VivitForVideoClassification(VivitConfig(num_labels=400)), 32, 224),
    "tiny": (lambda: VideoMAEForVideoClassification(VideoMAEConfig(**TINY)), 8, 32),
}

ap = argparse.ArgumentParser()
ap.add_argument("--arch", choices=list(ARCHS), default="videomae")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--batch", type=int, default=1)
ap.add_argument("--json", action="store_true")
a = ap.parse_args()
torch.set_num_threads(a.threads)
make, frames, size = ARCHS[a.arch]
model = make().train()
opt = torch.optim.AdamW(model.parameters(), lr=5e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
x = torch.randn(a.batch, frames, 3, size, size)
y = torch.arange(a.batch) % model.config.num_labels
times = []
for i in range(a.steps + 1):
    t = time.perf_counter()
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(pixel_values=x).logits, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    if i > 0:
        times.append(time.perf_counter() - t)
med = statistics.median(times)
row = {"model": a.arch, "batch": a.batch, "median_s": med, "clips_per_s": a.batch / med,
       "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "threads": a.threads,
       "torch": torch.__version__, "attn": getattr(model.config, "_attn_implementation", None)}
if a.json:
    print(json.dumps(row))
else:
    print(f"{'model':<12} {'batch':>6} {'s/step':>10} {'clips/s':>8} {'peak_MiB':>10}")
    print(f"{row['model']:<12} {a.batch:>6} {med:>10.3f} {row['clips_per_s']:>8.2f} {row['peak_rss_mib']:>10.0f}")
