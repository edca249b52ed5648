"""PyTorch + transformers forward latency of the base-size video models, the
reference for `vidi bench model`. Random weights, eval, no_grad.

    /work/pyref/bin/python benches/python_model.py --threads 2 --runs 3 [--arch videomae] [--json]
    python benches/python_model.py --device cuda --dtype bf16 --batch 8 --arch videomae --json
    python benches/python_model.py --config tests/fixtures/models/videomae_meanpool --batch 2
    /work/pyref/bin/python benches/python_model.py --threads 2 --runs 3 --arch vjepa2   # ViT-L, 16x256x256

--device cuda times on the GPU (synchronised), --dtype bf16 runs under
torch.autocast(bfloat16) (fp32 weights), --attn picks transformers' attention
(sdpa by default, eager where transformers has no sdpa for the model: PyTorch's fused scaled_dot_product_attention). --config DIR
builds the model of a config.json (random weights; the same shapes `vidi bench
model --model DIR` runs). Reports median seconds per forward pass (after one
warm-up), and peak memory: torch.cuda.max_memory_allocated on the GPU, the
process's peak resident memory on the CPU (run one --arch per process for a
clean figure). Needs torch and transformers (tests/fixtures/requirements.txt).
"""
import argparse
import contextlib
import json
import resource
import statistics
import time

import torch
from transformers import (AutoConfig, AutoModelForVideoClassification, TimesformerConfig,
                          TimesformerForVideoClassification, VideoMAEConfig, VideoMAEForVideoClassification,
                          VivitConfig, VivitForVideoClassification)

ARCHS = {
    "videomae": (lambda attn: VideoMAEForVideoClassification(VideoMAEConfig(num_labels=400, attn_implementation=attn)), 16),
    "timesformer": (lambda attn: TimesformerForVideoClassification(TimesformerConfig(num_labels=400, attn_implementation=attn)), 8),
    "vivit": (lambda attn: VivitForVideoClassification(VivitConfig(num_labels=400, attn_implementation=attn)), 32),
}
# VideoPrism-base: 16 x 288 x 288, input `pixel_values_videos`, eager attention (its only
# non-flash one: the soft-cap).
SIZE = {"videoprism": 288, "vjepa2": 256}
INPUT = {"videoprism": "pixel_values_videos", "vjepa2": "pixel_values_videos"}


def _videoprism(attn):
    from transformers import VideoPrismForVideoClassification, VideoPrismVisionConfig
    # Eager attention whatever --attn says: the soft-cap has no sdpa path.
    return VideoPrismForVideoClassification(VideoPrismVisionConfig(num_labels=400))


ARCHS["videoprism"] = (_videoprism, 16)


def _vjepa2(attn):
    from transformers import VJEPA2Config, VJEPA2ForVideoClassification
    # ViT-L at the size of facebook/vjepa2-vitl-fpc16-256-ssv2 (16 frames of 256x256); --frames changes it.
    return VJEPA2ForVideoClassification(VJEPA2Config(num_labels=400, frames_per_clip=a.frames or 16,
                                                     attn_implementation=attn))


ARCHS["vjepa2"] = (_vjepa2, 16)

ap = argparse.ArgumentParser()
ap.add_argument("--arch", choices=list(ARCHS), action="append")
ap.add_argument("--config", metavar="DIR", help="a folder with a config.json (random weights of that shape)")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--batch", type=int, default=1)
ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="bf16: autocast to bfloat16")
ap.add_argument("--attn", choices=["eager", "sdpa"], default="sdpa",
                help="sdpa falls back to eager for a model transformers has no sdpa for (TimeSformer)")
ap.add_argument("--json", action="store_true")
ap.add_argument("--frames", type=int, help="frames per clip (vjepa2 only; default 16)")
a = ap.parse_args()
torch.set_num_threads(a.threads)
dev = torch.device(a.device)


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


def autocast():
    if a.dtype == "bf16":
        return torch.autocast(dev.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


if a.config:
    cfg = AutoConfig.from_pretrained(a.config)
    models = [(cfg.model_type, lambda attn: AutoModelForVideoClassification.from_config(cfg, attn_implementation=attn),
               cfg.num_frames, cfg.image_size)]
else:
    models = [(n, ARCHS[n][0], a.frames if n == "vjepa2" and a.frames else ARCHS[n][1], SIZE.get(n, 224))
              for n in (a.arch or list(ARCHS))]


def build(make):
    try:
        return make(a.attn)
    except ValueError:  # no sdpa for this architecture in transformers
        return make("eager")


rows = []
for name, make, frames, size in models:
    model = build(make).eval().to(dev)
    x = torch.randn(a.batch, frames, 3, size, size, device=dev)
    inputs = {INPUT.get(name, "pixel_values"): x}
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with torch.no_grad(), autocast():
        model(**inputs)
        sync()
        times = []
        for _ in range(a.runs):
            t = time.perf_counter()
            model(**inputs)
            sync()
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    rows.append({"arch": name, "input": list(x.shape), "median_s": med, "clips_per_s": a.batch / med,
                 "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                 "peak_device_mib": torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None,
                 "attn": getattr(model.config, "_attn_implementation", None), "threads": a.threads,
                 "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu", "dtype": a.dtype,
                 "torch": torch.__version__})
if a.json:
    print(json.dumps({"rows": rows}, indent=1))
else:
    print(f"{'arch':<12} {'input':<22} {'median_s':>9} {'clips/s':>8} {'peak_MiB':>9} {'device_MiB':>10}  attention")
    for r in rows:
        dm = f"{r['peak_device_mib']:.0f}" if r["peak_device_mib"] is not None else ""
        print(f"{r['arch']:<12} {str(r['input']):<22} {r['median_s']:>9.3f} {r['clips_per_s']:>8.2f} "
              f"{r['peak_rss_mib']:>9.0f} {dm:>10}  {r['attn']} {r['dtype']} {r['device']}")
