"""Writes the seed inputs of the fuzz corpus (tests/fuzz/<target>/) from the
committed fixtures. Plain Python 3 and the ffmpeg CLI; no torch.

    python3 tests/fuzz/make_seeds.py

Deterministic apart from the video encoders' own metadata. The Rust tests
(tests/suite/fuzz.rs) only read the files this writes, and any regression
inputs committed next to them.
"""

import collections
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import types
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(ROOT, "tests", "fuzz")
MODELS = [
    "timesformer",
    "timesformer_long",
    "timesformer_space_only",
    "videomae_cls",
    "videomae_long",
    "videomae_meanpool",
    "videomae_pretraining",
    "vivit",
]


def out(target, name):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, name)


# --- config.json and preprocessor_config.json: the fixtures' own files ---------


def configs():
    for m in MODELS:
        src = os.path.join(FIX, "models", m)
        shutil.copyfile(os.path.join(src, "config.json"), out("config", m + ".json"))
        pre = os.path.join(src, "preprocessor_config.json")
        if os.path.exists(pre):
            shutil.copyfile(pre, out("preprocessor", m + ".json"))


# --- safetensors -----------------------------------------------------------------


def read_safetensors(path):
    with open(path, "rb") as f:
        b = f.read()
    (n,) = struct.unpack("<Q", b[:8])
    header = json.loads(b[8 : 8 + n])
    data = b[8 + n :]
    tensors = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        tensors[k] = (v["dtype"], v["shape"], data[s:e])
    return tensors


def write_safetensors(path, tensors):
    """tensors: list of (name, dtype, shape, bytes), written in that order."""
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(t[3] for t in tensors))


def f32_values(data):
    return list(struct.unpack("<%df" % (len(data) // 4), data))


def f16_bits(x):
    return struct.unpack("<H", struct.pack("<e", x))[0]


def safetensors():
    vivit = read_safetensors(os.path.join(FIX, "models", "vivit", "model.safetensors"))
    keep = ["classifier.bias", "vivit.embeddings.cls_token", "vivit.layernorm.weight"]
    write_safetensors(
        out("safetensors", "vivit-f32.safetensors"), [(k, *vivit[k]) for k in keep]
    )
    # The same values as F16, BF16 and F64, and the tensors vidi skips or finds odd:
    # integer position ids, a scalar, an empty tensor.
    _, shape, data = vivit["classifier.bias"]
    vals = f32_values(data)
    f16 = b"".join(struct.pack("<H", f16_bits(v)) for v in vals)
    bf16 = b"".join(struct.pack("<I", struct.unpack("<I", struct.pack("<f", v))[0])[2:] for v in vals)
    f64 = b"".join(struct.pack("<d", v) for v in vals)
    write_safetensors(
        out("safetensors", "vivit-mixed.safetensors"),
        [
            ("as_f16", "F16", shape, f16),
            ("as_bf16", "BF16", shape, bf16),
            ("as_f64", "F64", shape, f64),
            ("position_ids", "I64", [1, 4], struct.pack("<4q", 0, 1, 2, 3)),
            ("scalar", "F32", [], struct.pack("<f", vals[0])),
            ("empty", "F32", [0, 32], b""),
        ],
    )
    tf = read_safetensors(os.path.join(FIX, "models", "timesformer", "model.safetensors"))
    keep = ["classifier.bias", "timesformer.embeddings.time_embeddings"]
    write_safetensors(
        out("safetensors", "timesformer-f32.safetensors"), [(k, *tf[k]) for k in keep]
    )
    # A sharded checkpoint's index naming two shards (the fuzz test writes the shards).
    index = {
        "metadata": {"total_size": 0},
        "weight_map": {
            "classifier.bias": "model-00001-of-00002.safetensors",
            "vivit.embeddings.cls_token": "model-00001-of-00002.safetensors",
            "as_f16": "model-00002-of-00002.safetensors",
        },
    }
    with open(out("safetensors_index", "two-shards.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")


# --- pytorch_model.bin ------------------------------------------------------------
#
# torch is not needed: the fixture's pickle is read with stand-ins for the three
# globals a state dict names, and a smaller one is written with the same globals.


class StorageRef:
    def __init__(self, dtype, key, location, numel):
        self.dtype, self.key, self.location, self.numel = dtype, key, location, numel


class TensorRec:
    def __init__(self, storage, offset, size, stride, requires_grad):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
        self.requires_grad = requires_grad

    def __reduce__(self):
        return (
            _rebuild_tensor_v2,
            (self.storage, self.offset, tuple(self.size), tuple(self.stride), self.requires_grad,
             collections.OrderedDict()),
        )


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks, *rest):
    return TensorRec(storage, offset, size, stride, requires_grad)


class FloatStorage:
    pass


torch_mod = types.ModuleType("torch")
utils_mod = types.ModuleType("torch._utils")
torch_mod._utils = utils_mod
torch_mod.FloatStorage = FloatStorage
utils_mod._rebuild_tensor_v2 = _rebuild_tensor_v2
FloatStorage.__module__ = "torch"
_rebuild_tensor_v2.__module__ = "torch._utils"
sys.modules["torch"] = torch_mod
sys.modules["torch._utils"] = utils_mod


class Reader(pickle.Unpickler):
    def find_class(self, module, name):
        table = {
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
            ("torch", "FloatStorage"): FloatStorage,
        }
        return table[(module, name)]

    def persistent_load(self, pid):
        kind, dtype, key, location, numel = pid[:5]
        assert kind == "storage" and dtype is FloatStorage, pid
        return StorageRef(dtype, key, location, numel)


class Writer(pickle.Pickler):
    legacy = False

    def persistent_id(self, obj):
        if isinstance(obj, StorageRef):
            pid = ("storage", FloatStorage, obj.key, obj.location, obj.numel)
            return pid + (None,) if self.legacy else pid
        return None


def dump(obj, legacy):
    import io

    buf = io.BytesIO()
    w = Writer(buf, protocol=2)
    w.legacy = legacy
    w.dump(obj)
    return buf.getvalue()


def pickles():
    src = zipfile.ZipFile(os.path.join(FIX, "models", "vivit", "pytorch_model.bin"))
    prefix = "pytorch_model/"
    state = Reader(__import__("io").BytesIO(src.read(prefix + "data.pkl"))).load()
    names = ["classifier.bias", "vivit.embeddings.cls_token", "vivit.layernorm.weight"]
    small = collections.OrderedDict()
    storages = {}
    for new_key, name in enumerate(names):
        t = state[name]
        data = src.read(prefix + "data/" + t.storage.key)
        t.storage = StorageRef(FloatStorage, str(new_key), "cpu", t.storage.numel)
        small[name] = t
        storages[str(new_key)] = data
    # The ZIP layout torch.save writes (stored entries, one per storage).
    entries = [("data.pkl", dump(small, legacy=False))]
    for meta in [".format_version", ".storage_alignment", "byteorder", "version"]:
        entries.append((meta, src.read(prefix + meta)))
    for key in sorted(storages):
        entries.append(("data/" + key, storages[key]))
    with zipfile.ZipFile(out("pickle", "vivit-3.bin"), "w", zipfile.ZIP_STORED) as z:
        for name, data in entries:
            info = zipfile.ZipInfo("archive/" + name, date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(info, data)
    # The legacy layout (torch.save before 1.6): magic, protocol, sys info, the state
    # dict, the storage keys, then each storage as a little-endian i64 count and its bytes.
    sys_info = {"protocol_version": 1001, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}
    with open(out("pickle", "vivit-3-legacy.bin"), "wb") as f:
        f.write(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2))
        f.write(pickle.dumps(1001, protocol=2))
        f.write(pickle.dumps(sys_info, protocol=2))
        f.write(dump(small, legacy=True))
        keys = sorted(storages)
        f.write(pickle.dumps(keys, protocol=2))
        for key in keys:
            f.write(struct.pack("<q", len(storages[key]) // 4) + storages[key])


# --- videos: a few frames of the committed clips, tiny -------------------------------


def ffmpeg(*args):
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args], check=True
    )


def videos():
    clips = os.path.join(FIX, "clips")
    ffmpeg("-i", os.path.join(clips, "mmaction2_demo.mp4"), "-frames:v", "8", "-an",
           "-vf", "scale=64:48", "-c:v", "libx264", "-preset", "veryfast", "-bf", "2",
           "-g", "4", "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-map_metadata", "-1",
           "-fflags", "+bitexact", out("video", "kinetics-8f-h264.mp4"))
    ffmpeg("-i", os.path.join(clips, "v_ApplyEyeMakeup_g01_c01.avi"), "-frames:v", "6", "-an",
           "-vf", "scale=48:32", "-c:v", "mpeg4", "-q:v", "12", "-map_metadata", "-1",
           "-fflags", "+bitexact", out("video", "ucf101-6f-mpeg4.avi"))
    ffmpeg("-i", os.path.join(clips, "asl_thanks.mkv"), "-frames:v", "6", "-an",
           "-vf", "scale=48:32", "-c:v", "libvpx", "-b:v", "50k", "-map_metadata", "-1",
           "-fflags", "+bitexact", out("video", "asl-6f-vp8.webm"))


# --- annotation lists: the relative paths a dataset folder holds ----------------------


def annotations():
    with open(out("annotation", "ucf101-flat.txt"), "w") as f:
        f.write(
            "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 1\n"
            "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c02.avi 1\n"
            "Basketball/v_Basketball_g25_c07.mp4 8\n"
            "Basketball/notes.txt\n"
            ".hidden/v_Hidden_g01_c01.avi\n"
        )
    with open(out("annotation", "split-layout.txt"), "w") as f:
        f.write(
            "train/arm_wrestling/clip_0001.mp4\n"
            "train/sign_thanks/asl_thanks.MKV\n"
            "val/arm_wrestling/v_Arm_g02_c01.webm\n"
            "val/sign_thanks/v_Sign_g02_c03.mov\n"
            "test/sign_thanks/v_Sign_g02_c04.ts\n"
        )


if __name__ == "__main__":
    configs()
    safetensors()
    pickles()
    videos()
    annotations()
