"""PyTorch + transformers training-step time, the reference for `vidi bench train`.

One step = forward, cross-entropy, backward, clip_grad_norm_(1.0), AdamW step
(what the Trainer does per step), random weights and inputs.

    /work/pyref/bin/python benches/python_train.py --threads 2 --steps 3 --batch 1 [--arch videomae|timesformer|vivit|tiny] [--json]
    python benches/python_train.py --device cuda --dtype bf16 --batch 8 --arch videomae --json

--device cuda times on the GPU (synchronised); --dtype bf16 runs forward and
loss under torch.autocast(bfloat16) with fp32 weights and optimizer state (no
loss scaler: bf16 has fp32's range); --dtype fp16 is the same under
torch.autocast(float16) with torch.amp.GradScaler (what `vidi bench train
--precision f16` does); --attn picks transformers' attention
(sdpa by default, eager where transformers has no sdpa for the model). Reports the median seconds per step after one warm-up
step, clips/s and peak memory: torch.cuda.max_memory_allocated on the GPU,
the process's peak resident memory on the CPU (run one --arch per process for
a clean figure). Needs torch and transformers (tests/fixtures/requirements.txt).
"""
import argparse
import contextlib
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
    "videomae": (lambda attn: VideoMAEForVideoClassification(VideoMAEConfig(num_labels=400, attn_implementation=attn)), 16, 224),
    "timesformer": (lambda attn: TimesformerForVideoClassification(TimesformerConfig(num_labels=400, attn_implementation=attn)), 8, 224),
    "vivit": (lambda attn: VivitForVideoClassification(VivitConfig(num_labels=400, attn_implementation=attn)), 32, 224),
    "tiny": (lambda attn: VideoMAEForVideoClassification(VideoMAEConfig(**TINY, attn_implementation=attn)), 8, 32),
}

ap = argparse.ArgumentParser()
ap.add_argument("--arch", choices=list(ARCHS), default="videomae")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--batch", type=int, default=1)
ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
ap.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32",
                help="bf16: autocast to bfloat16; fp16: autocast to float16 with a GradScaler")
ap.add_argument("--attn", choices=["eager", "sdpa"], default="sdpa",
                help="sdpa falls back to eager for a model transformers has no sdpa for (TimeSformer)")
ap.add_argument("--json", action="store_true")
a = ap.parse_args()
torch.set_num_threads(a.threads)
dev = torch.device(a.device)
make, frames, size = ARCHS[a.arch]
try:
    model = make(a.attn)
except ValueError:  # no sdpa for this architecture in transformers
    model = make("eager")
model = model.train().to(dev)
opt = torch.optim.AdamW(model.parameters(), lr=5e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
x = torch.randn(a.batch, frames, 3, size, size, device=dev)
y = (torch.arange(a.batch) % model.config.num_labels).to(dev)


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


def autocast():
    if a.dtype == "bf16":
        return torch.autocast(dev.type, dtype=torch.bfloat16)
    if a.dtype == "fp16":
        return torch.autocast(dev.type, dtype=torch.float16)
    return contextlib.nullcontext()


# Its defaults: init_scale 2**16, growth 2 every 2000 steps, backoff 0.5.
scaler = torch.amp.GradScaler(dev.type, enabled=a.dtype == "fp16")


if dev.type == "cuda":
    torch.cuda.reset_peak_memory_stats()
times = []
for i in range(a.steps + 1):
    t = time.perf_counter()
    opt.zero_grad()
    with autocast():
        loss = torch.nn.functional.cross_entropy(model(pixel_values=x).logits, y)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    scaler.step(opt)
    scaler.update()
    sync()
    if i > 0:
        times.append(time.perf_counter() - t)
med = statistics.median(times)
row = {"model": a.arch, "batch": a.batch, "median_s": med, "clips_per_s": a.batch / med,
       "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
       "peak_device_mib": torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None,
       "threads": a.threads, "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
       "dtype": a.dtype, "torch": torch.__version__, "attn": getattr(model.config, "_attn_implementation", None)}
if a.json:
    print(json.dumps(row))
else:
    dm = f"{row['peak_device_mib']:.0f}" if row["peak_device_mib"] is not None else ""
    print(f"{'model':<12} {'batch':>6} {'s/step':>10} {'clips/s':>8} {'peak_MiB':>10} {'device_MiB':>10}")
    print(f"{row['model']:<12} {a.batch:>6} {med:>10.3f} {row['clips_per_s']:>8.2f} {row['peak_rss_mib']:>10.0f} {dm:>10}"
          f"  {row['attn']} {a.dtype} {row['device']}")
