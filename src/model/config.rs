//! `config.json` and `preprocessor_config.json` of transformers checkpoints:
//! every field that changes the computation, with transformers' defaults.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::ModelError;
use crate::dataset::transforms::{ImageProcessor, ProcessorSize};

/// Which architecture a checkpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// VideoMAE-base, 16 x 224 x 224.
    #[value(name = "videomae")]
    VideoMae,
    /// TimeSformer-base, 8 x 224 x 224.
    Timesformer,
    /// ViViT-B/16x2, 32 x 224 x 224.
    Vivit,
}

impl Architecture {
    /// Every architecture vidi has.
    pub const ALL: [Architecture; 3] = [Architecture::VideoMae, Architecture::Timesformer, Architecture::Vivit];

    /// The architecture of a `model_type` string (`config.json`, `--arch`).
    pub fn from_model_type(model_type: &str) -> Option<Architecture> {
        Architecture::ALL.into_iter().find(|a| a.model_type() == model_type)
    }

    /// The `model_type` string (also the CLI's `--arch` value).
    pub fn model_type(self) -> &'static str {
        match self {
            Architecture::VideoMae => "videomae",
            Architecture::Timesformer => "timesformer",
            Architecture::Vivit => "vivit",
        }
    }

    /// The name people know it by.
    pub fn display_name(self) -> &'static str {
        match self {
            Architecture::VideoMae => "VideoMAE",
            Architecture::Timesformer => "TimeSformer",
            Architecture::Vivit => "ViViT",
        }
    }

    /// The transformers class for video classification.
    pub fn classifier_class(self) -> &'static str {
        match self {
            Architecture::VideoMae => "VideoMAEForVideoClassification",
            Architecture::Timesformer => "TimesformerForVideoClassification",
            Architecture::Vivit => "VivitForVideoClassification",
        }
    }
}

/// The activation of the MLP blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Exact GELU (erf).
    Gelu,
    /// The tanh approximation (`gelu_fast`, `gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
}

/// A model's configuration, read from `config.json`.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    /// Architecture.
    pub arch: Architecture,
    /// Input height = width.
    pub image_size: usize,
    /// Spatial patch size (height = width).
    pub patch_size: usize,
    /// Input channels.
    pub num_channels: usize,
    /// Frames per clip the model takes.
    pub num_frames: usize,
    /// Temporal patch size (1 for TimeSformer).
    pub tubelet_size: usize,
    /// Width of the transformer.
    pub hidden_size: usize,
    /// Depth.
    pub num_hidden_layers: usize,
    /// Heads per attention.
    pub num_attention_heads: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// MLP activation.
    pub hidden_act: Activation,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Attention projections carry biases.
    pub qkv_bias: bool,
    /// VideoMAE: mean-pool tokens then `fc_norm` (true), or final `layernorm` and token 0.
    pub use_mean_pooling: bool,
    /// Class names by index (`id2label`).
    pub labels: Vec<String>,
    /// The whole `config.json`, to write back on export with only the labels changed.
    pub raw: Value,
}

impl ModelConfig {
    /// Tokens per clip (without CLS).
    pub fn num_patches(&self) -> usize {
        (self.num_frames / self.tubelet_size) * (self.image_size / self.patch_size).pow(2)
    }

    /// Reads and checks `config.json` of a model folder.
    pub fn from_dir(dir: &Path) -> Result<ModelConfig, ModelError> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
        let raw: Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::BadConfig { path: path.clone(), reason: e.to_string() })?;
        Self::from_json(raw).map_err(|reason| ModelError::BadConfig { path, reason })
    }

    /// Parses a `config.json` value.
    pub fn from_json(raw: Value) -> Result<ModelConfig, String> {
        let model_type = raw["model_type"].as_str().unwrap_or_default();
        let Some(arch) = Architecture::from_model_type(model_type) else {
            return Err(format!("model_type '{model_type}' is not VideoMAE, TimeSformer or ViViT"));
        };
        let int = |k: &str, d: usize| raw[k].as_u64().map_or(d, |v| v as usize);
        let (frames, tubelet, patch, eps, act) = match arch {
            Architecture::VideoMae => (16, int("tubelet_size", 2), int("patch_size", 16), 1e-12, "gelu"),
            Architecture::Timesformer => (8, 1, int("patch_size", 16), 1e-6, "gelu"),
            Architecture::Vivit => {
                let t = raw["tubelet_size"].as_array().map(|a| a.iter().filter_map(Value::as_u64).collect::<Vec<_>>());
                let (tt, th, tw) = match t.as_deref() {
                    Some([a, b, c]) => (*a as usize, *b as usize, *c as usize),
                    None => (2, 16, 16),
                    Some(_) => return Err("tubelet_size must be [t, h, w]".into()),
                };
                if th != tw {
                    return Err(format!("non-square tubelets ({th}x{tw}) are not supported"));
                }
                (32, tt, th, 1e-6, "gelu_fast")
            }
        };
        let hidden_act = match raw["hidden_act"].as_str().unwrap_or(act) {
            "gelu" => Activation::Gelu,
            "gelu_fast" | "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
            other => return Err(format!("hidden_act '{other}' is not supported (gelu, gelu_fast)")),
        };
        if arch == Architecture::Timesformer {
            let at = raw["attention_type"].as_str().unwrap_or("divided_space_time");
            if at != "divided_space_time" {
                return Err(format!("TimeSformer attention_type '{at}' is not supported (divided_space_time only)"));
            }
        }
        // transformers 5 writes `qv_bias` for VideoMAE; Hub configs say `qkv_bias`.
        let qkv_bias = raw["qkv_bias"].as_bool().or(raw["qv_bias"].as_bool()).unwrap_or(true);
        let labels = labels_of(&raw)?;
        let cfg = ModelConfig {
            arch,
            image_size: int("image_size", 224),
            patch_size: patch,
            num_channels: int("num_channels", 3),
            num_frames: int("num_frames", frames),
            tubelet_size: tubelet,
            hidden_size: int("hidden_size", 768),
            num_hidden_layers: int("num_hidden_layers", 12),
            num_attention_heads: int("num_attention_heads", 12),
            intermediate_size: int("intermediate_size", 3072),
            hidden_act,
            layer_norm_eps: raw["layer_norm_eps"].as_f64().unwrap_or(eps),
            qkv_bias,
            use_mean_pooling: raw["use_mean_pooling"].as_bool().unwrap_or(true),
            labels,
            raw,
        };
        if !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads) {
            return Err("hidden_size is not a multiple of num_attention_heads".into());
        }
        if cfg.patch_size == 0 || !cfg.image_size.is_multiple_of(cfg.patch_size) {
            return Err(format!("image_size {} is not a multiple of patch_size {}", cfg.image_size, cfg.patch_size));
        }
        if cfg.tubelet_size == 0 || !cfg.num_frames.is_multiple_of(cfg.tubelet_size) {
            return Err(format!(
                "num_frames {} is not a multiple of tubelet_size {}",
                cfg.num_frames, cfg.tubelet_size
            ));
        }
        Ok(cfg)
    }

    /// The config as JSON with new labels (`id2label`, `label2id`, `num_labels` is implied) and
    /// `architectures` set to the classification class.
    pub fn to_json_with_labels(&self, labels: &[String]) -> Value {
        let mut v = self.raw.clone();
        let id2label: BTreeMap<String, String> =
            labels.iter().enumerate().map(|(i, l)| (i.to_string(), l.clone())).collect();
        let label2id: BTreeMap<String, usize> = labels.iter().enumerate().map(|(i, l)| (l.clone(), i)).collect();
        v["id2label"] = serde_json::json!(id2label);
        v["label2id"] = serde_json::json!(label2id);
        v["architectures"] = serde_json::json!([self.arch.classifier_class()]);
        v["model_type"] = serde_json::json!(self.arch.model_type());
        if let Some(obj) = v.as_object_mut() {
            obj.remove("num_labels");
        }
        v
    }
}

/// `id2label` in index order; missing gives no labels.
fn labels_of(raw: &Value) -> Result<Vec<String>, String> {
    let Some(map) = raw["id2label"].as_object() else {
        let n = raw["num_labels"].as_u64().unwrap_or(0) as usize;
        return Ok((0..n).map(|i| format!("LABEL_{i}")).collect());
    };
    let mut pairs = Vec::with_capacity(map.len());
    for (k, v) in map {
        let i: usize = k.parse().map_err(|_| format!("id2label key '{k}' is not an integer"))?;
        pairs.push((i, v.as_str().unwrap_or_default().to_string()));
    }
    pairs.sort();
    if pairs.iter().enumerate().any(|(i, (k, _))| i != *k) {
        return Err("id2label keys are not 0..n-1".into());
    }
    Ok(pairs.into_iter().map(|p| p.1).collect())
}

/// Reads `preprocessor_config.json`; fields it lacks take the defaults of
/// the architecture's processor.
pub fn read_processor(dir: &Path, arch: Architecture) -> Result<ImageProcessor, ModelError> {
    let path = dir.join("preprocessor_config.json");
    let raw: Value = if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
        serde_json::from_str(&text).map_err(|e| ModelError::BadConfig { path: path.clone(), reason: e.to_string() })?
    } else {
        Value::Null
    };
    processor_from_json(&raw, arch).map_err(|reason| ModelError::BadConfig { path, reason })
}

/// Parses a processor config (see [`read_processor`]).
pub fn processor_from_json(raw: &Value, arch: Architecture) -> Result<ImageProcessor, String> {
    let mut p = ImageProcessor::default();
    if arch == Architecture::Vivit {
        p.rescale_factor = 1.0 / 127.5;
        p.offset = true;
        p.image_mean = [0.5; 3];
        p.image_std = [0.5; 3];
    }
    let b = |k: &str, d: bool| raw[k].as_bool().unwrap_or(d);
    p.do_resize = b("do_resize", p.do_resize);
    p.do_center_crop = b("do_center_crop", p.do_center_crop);
    p.do_rescale = b("do_rescale", p.do_rescale);
    p.do_normalize = b("do_normalize", p.do_normalize);
    p.offset = b("offset", p.offset);
    if let Some(f) = raw["rescale_factor"].as_f64() {
        p.rescale_factor = f as f32;
    }
    let size = &raw["size"];
    if let Some(s) = size["shortest_edge"].as_u64() {
        p.size = ProcessorSize::ShortestEdge { shortest_edge: s as usize };
    } else if let (Some(h), Some(w)) = (size["height"].as_u64(), size["width"].as_u64()) {
        p.size = ProcessorSize::HeightWidth { height: h as usize, width: w as usize };
    } else if let Some(s) = size.as_u64() {
        p.size = ProcessorSize::ShortestEdge { shortest_edge: s as usize };
    }
    let crop = &raw["crop_size"];
    if let (Some(h), Some(w)) = (crop["height"].as_u64(), crop["width"].as_u64()) {
        p.crop_size = (h as usize, w as usize);
    } else if let Some(s) = crop.as_u64() {
        p.crop_size = (s as usize, s as usize);
    }
    let triple = |k: &str| -> Option<[f32; 3]> {
        match &raw[k] {
            Value::Array(a) if a.len() == 3 => {
                Some([a[0].as_f64()? as f32, a[1].as_f64()? as f32, a[2].as_f64()? as f32])
            }
            Value::Number(n) => n.as_f64().map(|x| [x as f32; 3]),
            _ => None,
        }
    };
    if let Some(m) = triple("image_mean") {
        p.image_mean = m;
    }
    if let Some(s) = triple("image_std") {
        p.image_std = s;
    }
    match raw["resample"].as_u64() {
        None | Some(2) => {}
        Some(r) => return Err(format!("resample {r} is not supported (2, bilinear, is what the checkpoints use)")),
    }
    Ok(p)
}
