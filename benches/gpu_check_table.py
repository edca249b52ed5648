"""Prints scripts/gpu-check.sh's one table from the JSON its steps wrote.

    python benches/gpu_check_table.py target/gpu-check --smoke 0 --elapsed 300 --vidi "vidi 0.1.0" \
        --torch-device cuda --train-archs "videomae timesformer vivit"

Needs numpy and safetensors (the parity rows read the fixtures' logits).
"""
import argparse
import json
import os

import numpy as np
from safetensors.numpy import load_file

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--smoke", type=int, default=0)
ap.add_argument("--elapsed", type=int, default=0)
ap.add_argument("--vidi", default="")
ap.add_argument("--torch-device", default="cpu")
ap.add_argument("--train-archs", default="videomae")
a = ap.parse_args()
FIXTURES = "tests/fixtures/models"


def status(name):
    try:
        return open(os.path.join(a.out, name + ".status")).read().strip()
    except OSError:
        return "not run"


def load(name):
    if status(name) != "ok":
        return None
    try:
        return json.load(open(os.path.join(a.out, name + ".json")))
    except (OSError, ValueError):
        return None


def mib(x):
    return "" if x is None else f"{x:.1f}" if x < 10 else f"{x:.0f}"


def num(x, fmt="{:.2f}"):
    return "" if x is None else fmt.format(x)


def why(name):
    s = status(name)
    return "" if s == "ok" else s


lines = []
say = lines.append
if a.smoke:
    say("GPU check, SMOKE RUN (--smoke: small models; software or CPU devices; timings are not GPU results)")
else:
    say("GPU check")
say(f"vidi: {a.vidi}; PyTorch on {a.torch_device}; {a.elapsed} s in all")
say("")

adapter = load("adapter")
if adapter is None:
    say(f"adapters: {status('adapter')}")
else:
    for ad in adapter["adapters"]:
        say(f"adapter: {ad['name']} ({ad['backend']}, {ad['device_type']}; {ad['driver']})")
        say(f"  SHADER_F16: {'yes' if ad['shader_f16'] else 'no'}; cooperative matrix (tensor cores): "
            f"{'yes' if ad['cooperative_matrix'] else 'no'}; max storage binding "
            f"{ad['max_storage_buffer_binding_size'] / 2**20:.0f} MiB")
        say(f"  features: {' '.join(ad['features']) or '(none)'}")
    on = lambda k: "on" if adapter.get(k) else "off"
    say(f"vidi's build: fusion {on('fusion')}, autotune {on('autotune')}")
    wd = adapter["window_device"]
    if "Ok" in wd:
        diff = adapter.get("window_matmul_max_abs_diff")
        say(f"window device, made headless: {wd['Ok']}; a matmul on it vs the CPU: max |diff| {diff:.1e}")
    else:
        say(f"window device, made headless: FAILED: {wd['Err']}")
say("")

say("logits parity with the committed transformers fixtures (--device gpu)")
say(f"  {'fixture':<20} {'precision':<9} {'max |diff|':>11} {'top-1':>6}  ")
for m in ["videomae_meanpool", "videomae_cls", "timesformer", "vivit", "vjepa2"]:
    want = load_file(os.path.join(FIXTURES, m, "io.safetensors"))["logits"]
    for p in ["f32", "f16"]:
        name = f"parity_{m}_{p}"
        if status(name) == "not run":
            continue
        path = os.path.join(a.out, name + ".safetensors")
        if status(name) != "ok" or not os.path.exists(path):
            say(f"  {m:<20} {p:<9} {'':>11} {'':>6}  {status(name)}")
            continue
        got = load_file(path)["logits"].astype(np.float32)
        diff = float(np.abs(got - want).max())
        same = bool((got.argmax(-1) == want.argmax(-1)).all())
        tol = 1e-4 if p == "f32" else 1e-2
        verdict = "ok" if diff <= tol and same else f"OVER {tol:g}" if diff > tol else "top-1 differs"
        say(f"  {m:<20} {p:<9} {diff:>11.2e} {'same' if same else 'DIFF':>6}  {verdict} (tolerance {tol:g})")
say("")

mem = "peak device MiB" if a.torch_device == "cuda" else "peak MiB (vidi: device; torch: RSS)"
say(f"speed: clips/s (higher is better), {mem}; ratio = vidi f32 / torch fp32")
head = (f"  {'run':<22} {'batch':>5} {'vidi f32':>9} {'vidi f16':>9} {'torch fp32':>10} {'torch bf16':>10} "
        f"{'torch fp16':>10} {'ratio':>6} {'vidi MiB':>9} {'torch MiB':>9} {'loader':>8}  notes")
say(head)


def torch_mib(r):
    if r is None:
        return None
    return r.get("peak_device_mib") if r.get("peak_device_mib") is not None else r.get("peak_rss_mib")


def row(label, b, v32, v16, t32, t16, names, tf16=None):
    vc = v32["clips_per_s"] if v32 else None
    tc = t32["clips_per_s"] if t32 else None
    ratio = vc / tc if vc and tc else None
    vm = v32["peak_device_bytes"] / 2**20 if v32 and v32.get("peak_device_bytes") is not None else None
    loader = v32.get("loader") if v32 else None
    notes = "; ".join(f"{n}: {why(n)}" for n in names if why(n) and why(n) != "not run")
    say(f"  {label:<22} {b:>5} {num(vc):>9} {num(v16['clips_per_s'] if v16 else None):>9} {num(tc):>10} "
        f"{num(t16['clips_per_s'] if t16 else None):>10} {num(tf16['clips_per_s'] if tf16 else None):>10} {num(ratio):>6} {mib(vm):>9} {mib(torch_mib(t32)):>9} "
        f"{num(loader['clips_per_s'] if loader else None):>8}  {notes}")


for b in [1, 8]:
    names = [f"model_vidi_f32_b{b}", f"model_vidi_f16_b{b}", f"model_torch_fp32_b{b}", f"model_torch_bf16_b{b}"]
    v32, v16, t32, t16 = (load(n) for n in names)
    t32 = t32["rows"][0] if t32 else None
    t16 = t16["rows"][0] if t16 else None
    arch = v32["arch"] if v32 else "model"
    row(f"forward {arch}", b, v32, v16, t32, t16, names)
for arch in a.train_archs.split():
    for b in [1, 4, 8]:
        names = [f"train_vidi_{arch}_b{b}", f"train_vidi_f16_{arch}_b{b}", f"train_torch_fp32_{arch}_b{b}",
                 f"train_torch_bf16_{arch}_b{b}", f"train_torch_fp16_{arch}_b{b}"]
        v32, v16, t32, t16, tf16 = (load(n) for n in names)
        row(f"train {arch}", b, v32, v16, t32, t16, names, tf16)
say("")
for arch in a.train_archs.split():
    k = (load(f"train_vidi_{arch}_b1") or {}).get("kernels")
    if k:
        say(f"kernels of one vidi training step, {arch} batch 1 (fusion {'on' if k['fusion'] else 'off'}): "
            f"forward+backward {k['forward_backward']}, optimizer {k['optimizer']} "
            f"({k['optimizer_per_tensor']:.1f} per parameter tensor), LayerNorm {k['layer_norm']}, "
            f"activation {k['activation']}")
say("loader: the dataset loader's clips/s for that model's clips (train augmentation, decode workers = cores - 1),")
say("measured by `vidi bench train` before its steps. torch: benches/python_model.py / python_train.py, sdpa")
say("(eager where transformers has none: TimeSformer), bf16 = torch.autocast(bfloat16); in training, vidi f16 =")
say("`--precision f16` (mixed precision, loss scaling) and torch fp16 = torch.autocast(float16) with a GradScaler.")
print("\n".join(lines))
