//! The checkpoint parsers: `config.json`, `preprocessor_config.json`,
//! safetensors files and sharded indexes, pickle `pytorch_model.bin`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use serde_json::{json, Value};
use vidi::backend::HostTensor;
use vidi::model::config::{processor_from_json, read_processor, Architecture, ModelConfig};
use vidi::model::weights::{read_checkpoint, read_pytorch, read_safetensors};
use vidi::model::{processor_json, LoadOptions, VideoModel};
use vidi::video::RgbFrame;

use super::{corpus, fuzz, havoc, interesting, mutate_json, put_int, Input, Rng, Seed, Verdict};
use crate::{fixtures, read_tensor};

// ---------------------------------------------------------------------------
// config.json
// ---------------------------------------------------------------------------

const CONFIG_KEYS: [&str; 20] = [
    "model_type",
    "image_size",
    "patch_size",
    "num_channels",
    "num_frames",
    "tubelet_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "layer_norm_eps",
    "qkv_bias",
    "qv_bias",
    "use_mean_pooling",
    "id2label",
    "label2id",
    "num_labels",
    "attention_type",
    "architectures",
];

/// The fixture a corpus file was derived from: its name up to the first `-` or `.`.
fn fixture_of(name: &str) -> &str {
    name.split(['-', '.']).next().unwrap_or_default()
}

struct ModelDirs {
    /// Per fixture, a folder with its weights (and processor) linked in.
    with_weights: BTreeMap<String, PathBuf>,
    /// A folder with no weights.
    bare: PathBuf,
    device: burn::tensor::Device,
}

fn model_dirs(work: &Path) -> ModelDirs {
    let mut with_weights = BTreeMap::new();
    let models = fixtures().join("models");
    for e in std::fs::read_dir(&models).expect("fixtures/models").flatten() {
        let src = e.path();
        if !src.is_dir() {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let dir = work.join(format!("model-{name}"));
        std::fs::create_dir_all(&dir).expect("model dir");
        for f in ["model.safetensors", "preprocessor_config.json"] {
            if src.join(f).exists() {
                std::os::unix::fs::symlink(src.join(f), dir.join(f)).expect("symlink");
            }
        }
        with_weights.insert(name, dir);
    }
    let bare = work.join("bare");
    std::fs::create_dir_all(&bare).expect("bare dir");
    ModelDirs { with_weights, bare, device: vidi::backend::host_device() }
}

/// What a config means, for comparing two parses.
fn config_meaning(c: &ModelConfig) -> String {
    format!(
        "{:?}",
        (
            c.arch,
            [c.image_size, c.patch_size, c.num_channels, c.num_frames, c.tubelet_size, c.hidden_size],
            [c.num_hidden_layers, c.num_attention_heads, c.intermediate_size],
            (c.hidden_act, c.layer_norm_eps.to_bits(), c.qkv_bias, c.use_mean_pooling),
            &c.labels,
        )
    )
}

/// A parsed config says what its JSON says, and survives vidi's own export.
fn config_invariants(c: &ModelConfig) -> Result<(), String> {
    let raw = &c.raw;
    let given = |k: &str| raw.get(k).filter(|v| !v.is_null());
    if given("model_type").and_then(Value::as_str) != Some(c.arch.model_type()) {
        return Err(format!("arch {:?} from model_type {:?}", c.arch, given("model_type")));
    }
    let mut sizes = vec![
        ("image_size", c.image_size),
        ("num_channels", c.num_channels),
        ("num_frames", c.num_frames),
        ("hidden_size", c.hidden_size),
        ("num_hidden_layers", c.num_hidden_layers),
        ("num_attention_heads", c.num_attention_heads),
        ("intermediate_size", c.intermediate_size),
    ];
    match c.arch {
        Architecture::Vivit => {
            if let Some(t) = given("tubelet_size") {
                if t[0].as_u64() != Some(c.tubelet_size as u64) || t[1].as_u64() != Some(c.patch_size as u64) {
                    return Err(format!("tubelet_size {t} read as {} x {}", c.tubelet_size, c.patch_size));
                }
            }
        }
        Architecture::VideoMae | Architecture::Vjepa2 => {
            sizes.extend([("patch_size", c.patch_size), ("tubelet_size", c.tubelet_size)])
        }
        Architecture::Timesformer => sizes.push(("patch_size", c.patch_size)),
        Architecture::VideoPrism => {
            // Its depth is num_spatial_layers (+ num_temporal_layers); tubelet_size is [1, p, p].
            sizes.retain(|(k, _)| *k != "num_hidden_layers");
            sizes.push(("num_spatial_layers", c.num_hidden_layers));
            if given("image_size").is_some_and(Value::is_array) {
                sizes.retain(|(k, _)| *k != "image_size");
            }
            if let Some(t) = given("tubelet_size") {
                if t[0].as_u64() != Some(1) || t[1].as_u64() != Some(c.patch_size as u64) {
                    return Err(format!("tubelet_size {t} read as 1 x {}", c.patch_size));
                }
            }
        }
    }
    for (k, got) in sizes {
        if let Some(v) = given(k) {
            if v.as_u64() != Some(got as u64) {
                return Err(format!("{k} is {v} in the JSON but {got} parsed"));
            }
        }
    }
    if let Some(eps) = given("layer_norm_eps") {
        if eps.as_f64() != Some(c.layer_norm_eps) {
            return Err(format!("layer_norm_eps {eps} parsed as {}", c.layer_norm_eps));
        }
    }
    match (given("id2label"), given("num_labels")) {
        (Some(Value::Object(map)), _) => {
            if map.len() != c.labels.len() {
                return Err(format!("{} id2label entries, {} labels", map.len(), c.labels.len()));
            }
            for (k, v) in map {
                let i: usize = k.parse().map_err(|_| format!("id2label key {k:?} accepted"))?;
                if c.labels.get(i).map(String::as_str) != v.as_str() {
                    return Err(format!("id2label {k:?}: {v} became {:?}", c.labels.get(i)));
                }
            }
        }
        (Some(other), _) => return Err(format!("id2label {other} accepted")),
        (None, Some(n)) => {
            let want: Vec<String> = (0..n.as_u64().unwrap_or(0)).map(|i| format!("LABEL_{i}")).collect();
            if want != c.labels {
                return Err(format!("num_labels {n} gave {} labels", c.labels.len()));
            }
        }
        (None, None) if !c.labels.is_empty() => return Err(format!("{} labels from nowhere", c.labels.len())),
        (None, None) => {}
    }
    let again = ModelConfig::from_json(c.to_json_with_labels(&c.labels))
        .map_err(|e| format!("the config vidi exports from it does not parse: {e}"))?;
    if config_meaning(&again) != config_meaning(c) {
        return Err(format!("exported and read back: {} became {}", config_meaning(c), config_meaning(&again)));
    }
    Ok(())
}

fn check_config(st: &mut ModelDirs, input: &Input) -> Result<Verdict, String> {
    let fixture = fixture_of(&input.base);
    let dir = st.with_weights.get(fixture).unwrap_or(&st.bare).clone();
    std::fs::write(dir.join("config.json"), &input.bytes).expect("write config.json");
    let Ok(cfg) = ModelConfig::from_dir(&dir) else { return Ok(Verdict::Refused) };
    config_invariants(&cfg)?;
    // A quarter of the configs that parse are loaded with their fixture's
    // weights (half of those for new labels), and the model run once.
    if dir != st.bare && (input.replay || input.coin % 4 == 0) {
        let opts = if fixture == "videomae_pretraining" || input.coin & 8 != 0 {
            LoadOptions { labels: Some(vec!["a".into(), "b".into(), "c".into()]), seed: 1 }
        } else {
            LoadOptions::default()
        };
        if let Ok((model, _)) = VideoModel::load(&dir, &opts, &st.device) {
            let c = &model.config;
            let shape = vec![1, c.num_frames, c.num_channels, c.image_size, c.image_size];
            let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if let Some(n) = n.filter(|n| *n <= 1 << 20) {
                let logits = model
                    .forward_host(HostTensor::new(shape.clone(), vec![0.5; n]))
                    .map_err(|e| format!("a loaded model refused the input its config describes: {e}"))?;
                if logits.shape != [1, model.labels.len()] || logits.data.len() != model.labels.len() {
                    return Err(format!("logits {:?} for {} labels", logits.shape, model.labels.len()));
                }
            }
        }
    }
    Ok(Verdict::Parsed)
}

fn mutate_config(rng: &mut Rng, seed: &Seed, seeds: &[Seed]) -> Vec<u8> {
    mutate_json(rng, &seed.bytes, seeds, &CONFIG_KEYS)
}

#[test]
fn config_json() {
    fuzz("config", 4000, model_dirs, mutate_config, check_config);
}

// ---------------------------------------------------------------------------
// preprocessor_config.json
// ---------------------------------------------------------------------------

const PROCESSOR_KEYS: [&str; 14] = [
    "do_resize",
    "size",
    "crop_size",
    "do_center_crop",
    "do_rescale",
    "rescale_factor",
    "offset",
    "do_normalize",
    "image_mean",
    "image_std",
    "resample",
    "shortest_edge",
    "height",
    "width",
];

fn arch_of(name: &str) -> Architecture {
    Architecture::ALL.into_iter().find(|a| name.starts_with(a.model_type())).unwrap_or(Architecture::VideoMae)
}

fn check_processor(work: &mut PathBuf, input: &Input) -> Result<Verdict, String> {
    let arch = arch_of(&input.base);
    std::fs::write(work.join("preprocessor_config.json"), &input.bytes).expect("write preprocessor_config.json");
    let Ok(p) = read_processor(work, arch) else { return Ok(Verdict::Refused) };
    let raw: Value =
        serde_json::from_slice(&input.bytes).map_err(|e| format!("accepted text that is not JSON: {e}"))?;
    if !p.rescale_factor.is_finite()
        || p.image_mean.iter().any(|m| !m.is_finite())
        || p.image_std.iter().any(|s| !s.is_finite() || *s == 0.0)
    {
        return Err(format!("a processor that makes non-finite pixels: {p:?}"));
    }
    for (k, got) in [
        ("do_resize", p.do_resize),
        ("do_center_crop", p.do_center_crop),
        ("do_rescale", p.do_rescale),
        ("do_normalize", p.do_normalize),
        ("offset", p.offset),
    ] {
        // Only ViViT's processor has an offset step; the others ignore the key.
        let read = k != "offset" || arch == Architecture::Vivit;
        if let Some(b) = raw.get(k).and_then(Value::as_bool).filter(|_| read) {
            if b != got {
                return Err(format!("{k} is {b} in the JSON but {got} parsed"));
            }
        }
    }
    let again = processor_from_json(&processor_json(&p, arch), arch);
    if again.as_ref() != Ok(&p) {
        return Err(format!("the processor vidi exports reads back as {again:?}, not {p:?}"));
    }
    // Run it on one small picture: its output has the size it promises.
    let (w, h) = (12usize, 10usize);
    let data = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
    let frame = RgbFrame { width: w as u32, height: h as u32, data, time_secs: None };
    if let Ok(clip) = p.apply(&[frame]) {
        let want = if p.do_center_crop {
            p.crop_size
        } else if p.do_resize {
            let (rw, rh) = p.resized_size(w, h).map_err(|e| format!("applied a resize it cannot size: {e}"))?;
            (rh, rw)
        } else {
            (h, w)
        };
        if (clip.t, clip.c, clip.h, clip.w) != (1, 3, want.0, want.1) || clip.data.len() != 3 * clip.h * clip.w {
            return Err(format!("a 1 x 3 x {} x {} clip, not {:?}", want.0, want.1, (clip.t, clip.c, clip.h, clip.w)));
        }
    }
    Ok(Verdict::Parsed)
}

fn mutate_processor(rng: &mut Rng, seed: &Seed, seeds: &[Seed]) -> Vec<u8> {
    mutate_json(rng, &seed.bytes, seeds, &PROCESSOR_KEYS)
}

#[test]
fn preprocessor_config_json() {
    fuzz("preprocessor", 4000, |w| w.to_path_buf(), mutate_processor, check_processor);
}

// ---------------------------------------------------------------------------
// safetensors
// ---------------------------------------------------------------------------

const SAFETENSORS_KEYS: [&str; 5] = ["dtype", "shape", "data_offsets", "__metadata__", "format"];

/// IEEE half to f32, by its definition (sign, exponent, fraction).
fn half(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let e = ((h >> 10) & 0x1f) as i32;
    let m = (h & 0x3ff) as f64;
    let v = match e {
        0 => m * 2f64.powi(-24),
        31 if m == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1.0 + m / 1024.0) * 2f64.powi(e - 15),
    };
    (sign * v) as f32
}

/// The float tensors of a safetensors file, read from its bytes here.
fn safetensors_reference(bytes: &[u8]) -> Result<BTreeMap<String, (Vec<usize>, Vec<f32>)>, String> {
    let n = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default())).ok_or("no length")?;
    let n = usize::try_from(n).map_err(|e| e.to_string())?;
    let header = bytes.get(8..8usize.saturating_add(n)).ok_or("header past the end")?;
    let data = &bytes[8 + n..];
    let header: Value = serde_json::from_slice(header).map_err(|e| format!("header is not JSON: {e}"))?;
    let obj = header.as_object().ok_or("header is not an object")?;
    let mut out = BTreeMap::new();
    for (name, t) in obj.iter().filter(|(k, _)| *k != "__metadata__") {
        let dtype = t["dtype"].as_str().ok_or_else(|| format!("{name}: no dtype"))?;
        let shape: Vec<usize> = t["shape"]
            .as_array()
            .and_then(|a| a.iter().map(|d| d.as_u64().map(|d| d as usize)).collect())
            .ok_or_else(|| format!("{name}: no shape"))?;
        let off = t["data_offsets"].as_array().ok_or_else(|| format!("{name}: no offsets"))?;
        let (s, e) = (off[0].as_u64().unwrap_or(u64::MAX) as usize, off[1].as_u64().unwrap_or(u64::MAX) as usize);
        let raw = data.get(s..e).ok_or_else(|| format!("{name}: bytes {s}..{e} not in the file"))?;
        let values: Vec<f32> = match dtype {
            "F32" => raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            "F64" => raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()) as f32).collect(),
            "F16" => raw.chunks_exact(2).map(|c| half(u16::from_le_bytes([c[0], c[1]]))).collect(),
            "BF16" => {
                raw.chunks_exact(2).map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16)).collect()
            }
            _ => continue,
        };
        out.insert(name.clone(), (shape, values));
    }
    Ok(out)
}

fn same_floats(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

fn check_safetensors(work: &mut PathBuf, input: &Input) -> Result<Verdict, String> {
    let path = work.join("input.safetensors");
    std::fs::write(&path, &input.bytes).expect("write input");
    let Ok(got) = read_safetensors(&path) else { return Ok(Verdict::Refused) };
    let want = safetensors_reference(&input.bytes).map_err(|e| format!("vidi read a file it should refuse: {e}"))?;
    if got.keys().ne(want.keys()) {
        return Err(format!("tensors {:?}, the header lists {:?}", got.keys(), want.keys()));
    }
    for (name, t) in &got {
        let (shape, values) = &want[name];
        if t.shape != *shape || t.data.len() != t.shape.iter().product::<usize>() || !same_floats(&t.data, values) {
            return Err(format!("{name}: shape {:?} with {} values, the file has {shape:?}", t.shape, t.data.len()));
        }
    }
    Ok(Verdict::Parsed)
}

fn mutate_safetensors(rng: &mut Rng, seed: &Seed, seeds: &[Seed]) -> Vec<u8> {
    let b = &seed.bytes;
    let n = b.get(..8).map(|x| u64::from_le_bytes(x.try_into().unwrap_or_default()) as usize);
    let parts = n.filter(|n| n.checked_add(8).is_some_and(|e| e <= b.len())).map(|n| (&b[8..8 + n], &b[8 + n..]));
    match (rng.below(8), parts) {
        (0..=3, Some((header, data))) => {
            let mut h = mutate_json(rng, header, seeds, &SAFETENSORS_KEYS);
            if rng.chance(1, 2) {
                h.resize(h.len().div_ceil(8) * 8, b' ');
            }
            let mut out = (h.len() as u64).to_le_bytes().to_vec();
            out.extend_from_slice(&h);
            out.extend_from_slice(data);
            if rng.chance(1, 4) {
                let from = 8 + h.len();
                out = havoc(rng, out, seeds, from);
            }
            out
        }
        (4, _) => {
            let mut out = b.clone();
            if out.len() >= 8 {
                let len = if rng.chance(1, 2) {
                    interesting(rng)
                } else {
                    (n.unwrap_or(0) as u64).wrapping_add(rng.below(17) as u64).wrapping_sub(8)
                };
                out[..8].copy_from_slice(&len.to_le_bytes());
            }
            out
        }
        (5, Some((header, _))) => havoc(rng, b.clone(), seeds, 8 + header.len()),
        _ => havoc(rng, b.clone(), seeds, 0),
    }
}

#[test]
fn safetensors_files() {
    fuzz("safetensors", 6000, |w| w.to_path_buf(), mutate_safetensors, check_safetensors);
}

// ---------------------------------------------------------------------------
// model.safetensors.index.json (sharded checkpoints)
// ---------------------------------------------------------------------------

const INDEX_KEYS: [&str; 3] = ["weight_map", "metadata", "total_size"];
const SHARDS: [(&str, &str); 2] = [
    ("model-00001-of-00002.safetensors", "vivit-f32.safetensors"),
    ("model-00002-of-00002.safetensors", "vivit-mixed.safetensors"),
];

struct IndexDir {
    dir: PathBuf,
    /// Per shard file (canonical path), its float tensor names.
    shards: BTreeMap<PathBuf, BTreeSet<String>>,
}

fn index_dir(work: &Path) -> IndexDir {
    let dir = work.join("sharded");
    std::fs::create_dir_all(&dir).expect("sharded dir");
    let seeds = corpus("safetensors");
    let mut shards = BTreeMap::new();
    for (shard, seed) in SHARDS {
        let bytes = &seeds.iter().find(|s| s.name == seed).expect("shard seed").bytes;
        std::fs::write(dir.join(shard), bytes).expect("write shard");
        let names = safetensors_reference(bytes).expect("shard seed").into_keys().collect();
        shards.insert(dir.join(shard).canonicalize().expect("canonical"), names);
    }
    IndexDir { dir, shards }
}

fn check_index(st: &mut IndexDir, input: &Input) -> Result<Verdict, String> {
    std::fs::write(st.dir.join("model.safetensors.index.json"), &input.bytes).expect("write index");
    let Ok(got) = read_checkpoint(&st.dir) else { return Ok(Verdict::Refused) };
    let v: Value =
        serde_json::from_slice(&input.bytes).map_err(|e| format!("accepted an index that is not JSON: {e}"))?;
    let names: BTreeSet<&str> =
        v["weight_map"].as_object().map(|m| m.values().filter_map(Value::as_str).collect()).unwrap_or_default();
    let mut want = BTreeSet::new();
    for name in names {
        let inside = Path::new(name).components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        let file = st.dir.join(name).canonicalize().ok();
        match file.as_ref().and_then(|f| st.shards.get(f)) {
            Some(keys) if inside => want.extend(keys.iter().cloned()),
            _ => return Err(format!("read the shard {name:?}, which is not a file of the checkpoint's folder")),
        }
    }
    let keys: BTreeSet<String> = got.unused().into_iter().collect();
    if keys != want {
        return Err(format!("tensors {keys:?}, the shards named hold {want:?}"));
    }
    Ok(Verdict::Parsed)
}

/// Shard names a hostile or broken index might hold.
const SHARD_NAMES: [&str; 10] = [
    "/dev/zero",
    "/dev/null",
    "/proc/self/mem",
    "../sharded/model-00001-of-00002.safetensors",
    "./model-00002-of-00002.safetensors",
    "model-00001-of-00002.safetensors/",
    "missing.safetensors",
    "",
    ".",
    "/",
];

fn mutate_index(rng: &mut Rng, seed: &Seed, seeds: &[Seed]) -> Vec<u8> {
    let out = mutate_json(rng, &seed.bytes, seeds, &INDEX_KEYS);
    // A third of the time, one shard is named by a path that is not a shard.
    let Ok(mut v) = serde_json::from_slice::<Value>(&out) else { return out };
    match v.get_mut("weight_map").and_then(Value::as_object_mut) {
        Some(map) if !map.is_empty() && rng.chance(1, 3) => {
            let i = rng.below(map.len());
            if let Some(slot) = map.values_mut().nth(i) {
                *slot = json!(*rng.pick(&SHARD_NAMES));
            }
            serde_json::to_vec_pretty(&v).unwrap_or(out)
        }
        _ => out,
    }
}

#[test]
fn safetensors_index_json() {
    fuzz("safetensors_index", 2000, index_dir, mutate_index, check_index);
}

// ---------------------------------------------------------------------------
// pytorch_model.bin (pickle, in a ZIP or the legacy layout)
// ---------------------------------------------------------------------------

/// The corpus files holding three tensors of the vivit fixture.
const VIVIT_PICKLES: [&str; 2] = ["vivit-3.bin", "vivit-3-legacy.bin"];

fn crc32(d: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in d {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}

/// The entries of a ZIP of stored (uncompressed) files, read from its local headers.
fn zip_entries(b: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut p = 0;
    while b.get(p..p + 4) == Some(b"PK\x03\x04") {
        let u16_at = |i: usize| b.get(p + i..p + i + 2).map(|x| u16::from_le_bytes([x[0], x[1]]) as usize);
        let u32_at = |i: usize| b.get(p + i..p + i + 4).map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]) as usize);
        if u16_at(8)? != 0 {
            return None;
        }
        let (size, name_len, extra) = (u32_at(18)?, u16_at(26)?, u16_at(28)?);
        let name = String::from_utf8(b.get(p + 30..p + 30 + name_len)?.to_vec()).ok()?;
        let start = p + 30 + name_len + extra;
        out.push((name, b.get(start..start + size)?.to_vec()));
        p = start + size;
    }
    (!out.is_empty()).then_some(out)
}

/// A ZIP of stored files, with correct checksums.
fn zip_pack(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data) in entries {
        let offset = out.len() as u32;
        let (crc, len, n) = (crc32(data), data.len() as u32, name.len() as u16);
        let common = |v: &mut Vec<u8>| {
            v.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]); // version, flags, stored, time, date
            v.extend_from_slice(&crc.to_le_bytes());
            v.extend_from_slice(&len.to_le_bytes());
            v.extend_from_slice(&len.to_le_bytes());
            v.extend_from_slice(&n.to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes());
        };
        out.extend_from_slice(b"PK\x03\x04");
        common(&mut out);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(b"PK\x01\x02\x14\x00");
        common(&mut central);
        central.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let (at, size, count) = (out.len() as u32, central.len() as u32, entries.len() as u16);
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&at.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

/// Pickle opcodes with a fixed-size operand (little-endian), and its width.
const PICKLE_ARGS: [(u8, usize); 19] = [
    (b'K', 1),
    (b'M', 2),
    (b'J', 4),
    (b'X', 4),
    (b'B', 4),
    (b'C', 1),
    (b'T', 4),
    (b'U', 1),
    (0x8c, 1),
    (0x8d, 8),
    (0x8e, 8),
    (0x8a, 1),
    (0x8b, 4),
    (b'q', 1),
    (b'r', 4),
    (b'h', 1),
    (b'j', 4),
    (0x95, 8),
    (0x80, 1),
];

/// Pickle opcodes without an operand.
const PICKLE_OPS: &[u8] = b"()]}aestuRbQ012.Nld\x85\x86\x87\x88\x89\x93\x94\x81";

fn mutate_pickle_stream(rng: &mut Rng, data: &[u8], seeds: &[Seed]) -> Vec<u8> {
    let mut d = data.to_vec();
    for _ in 0..1 + rng.below(3) {
        match rng.below(6) {
            0 | 1 => {
                // An opcode's operand (a length, a memo index, an integer) becomes an interesting integer.
                let at: Vec<(usize, usize)> = d
                    .iter()
                    .enumerate()
                    .filter_map(|(i, b)| PICKLE_ARGS.iter().find(|(op, _)| op == b).map(|(_, w)| (i, *w)))
                    .collect();
                if !at.is_empty() {
                    let (i, w) = *rng.pick(&at);
                    put_int(rng, &mut d, i + 1, w, true);
                }
            }
            2 => {
                let op = *rng.pick(PICKLE_OPS);
                let n = if rng.chance(1, 8) { 1 + rng.below(20_000) } else { 1 + rng.below(4) };
                let at = rng.below(d.len() + 1);
                d.splice(at..at, std::iter::repeat_n(op, n));
            }
            3 if !d.is_empty() => {
                let at = rng.below(d.len());
                d[at] = *rng.pick(PICKLE_OPS);
            }
            _ => d = havoc(rng, d, seeds, 0),
        }
    }
    d
}

fn mutate_pickle(rng: &mut Rng, seed: &Seed, seeds: &[Seed]) -> Vec<u8> {
    let Some(mut entries) = zip_entries(&seed.bytes).filter(|_| rng.chance(4, 5)) else {
        return mutate_pickle_stream(rng, &seed.bytes, seeds);
    };
    let pick = |rng: &mut Rng, entries: &[(String, Vec<u8>)], part: &str| {
        let of: Vec<usize> = (0..entries.len()).filter(|i| entries[*i].0.contains(part)).collect();
        if of.is_empty() {
            rng.below(entries.len())
        } else {
            *rng.pick(&of)
        }
    };
    match rng.below(10) {
        0..=5 => {
            let i = pick(rng, &entries, "data.pkl");
            entries[i].1 = mutate_pickle_stream(rng, &entries[i].1, seeds);
        }
        6 | 7 => {
            let i = pick(rng, &entries, "/data/");
            entries[i].1 = havoc(rng, entries[i].1.clone(), seeds, 0);
        }
        8 => {
            let i = rng.below(entries.len());
            if rng.chance(1, 2) {
                entries.remove(i);
            } else {
                let name = havoc(rng, entries[i].0.clone().into_bytes(), seeds, 0);
                entries[i].0 = String::from_utf8_lossy(&name).into_owned();
            }
        }
        _ => {
            let i = pick(rng, &entries, "byteorder");
            entries[i].1 = rng.pick(&["big", "little", "", "\u{ff}", "middle"]).as_bytes().to_vec();
        }
    }
    let packed = zip_pack(&entries);
    if rng.chance(1, 5) {
        havoc(rng, packed, seeds, 0)
    } else {
        packed
    }
}

fn check_pickle(work: &mut PathBuf, input: &Input) -> Result<Verdict, String> {
    let path = work.join("pytorch_model.bin");
    std::fs::write(&path, &input.bytes).expect("write input");
    let Ok(got) = read_pytorch(&path) else { return Ok(Verdict::Refused) };
    for (name, t) in &got {
        if t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(t.data.len()) {
            return Err(format!("{name}: shape {:?} with {} values", t.shape, t.data.len()));
        }
    }
    if input.replay && VIVIT_PICKLES.contains(&input.base.as_str()) {
        // The three tensors are the vivit fixture's, as its model.safetensors holds them.
        let reference = fixtures().join("models/vivit/model.safetensors");
        let names: Vec<&str> = got.keys().map(String::as_str).collect();
        if names != ["classifier.bias", "vivit.embeddings.cls_token", "vivit.layernorm.weight"] {
            return Err(format!("tensors {names:?}"));
        }
        for (name, t) in &got {
            let (shape, data) = read_tensor(&reference, name);
            if t.shape != shape || !same_floats(&t.data, &data) {
                return Err(format!("{name} differs from the fixture's model.safetensors"));
            }
        }
    }
    Ok(Verdict::Parsed)
}

#[test]
fn pytorch_pickle() {
    fuzz("pickle", 6000, |w| w.to_path_buf(), mutate_pickle, check_pickle);
}
