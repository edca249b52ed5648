//! `config.json` and `preprocessor_config.json` of transformers checkpoints:
//! every field that changes the computation, with transformers' defaults.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::ModelError;
use crate::dataset::transforms::{ImageProcessor, ProcessorSize, Resample};

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
    /// V-JEPA 2 (ViT-L, 16 x 256 x 256 for the SSv2 classifier): 3-D RoPE encoder, attentive pooler.
    #[value(name = "vjepa2")]
    Vjepa2,
    /// VideoPrism (base: 16 x 288 x 288): factorised spatial + temporal encoder, attention-pooling head;
    /// logits (batch, labels), where transformers gives (batch, 1, labels).
    #[value(name = "videoprism")]
    VideoPrism,
}

impl Architecture {
    /// Every architecture vidi has.
    pub const ALL: [Architecture; 5] = [
        Architecture::VideoMae,
        Architecture::Timesformer,
        Architecture::Vivit,
        Architecture::Vjepa2,
        Architecture::VideoPrism,
    ];

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
            Architecture::Vjepa2 => "vjepa2",
            Architecture::VideoPrism => "videoprism_vision_model",
        }
    }

    /// The name people know it by.
    pub fn display_name(self) -> &'static str {
        match self {
            Architecture::VideoMae => "VideoMAE",
            Architecture::Timesformer => "TimeSformer",
            Architecture::Vivit => "ViViT",
            Architecture::Vjepa2 => "V-JEPA 2",
            Architecture::VideoPrism => "VideoPrism",
        }
    }

    /// The transformers class for video classification.
    pub fn classifier_class(self) -> &'static str {
        match self {
            Architecture::VideoMae => "VideoMAEForVideoClassification",
            Architecture::Timesformer => "TimesformerForVideoClassification",
            Architecture::Vivit => "VivitForVideoClassification",
            Architecture::Vjepa2 => "VJEPA2ForVideoClassification",
            Architecture::VideoPrism => "VideoPrismForVideoClassification",
        }
    }
}

/// The activation of the MLP blocks (`hidden_act`).
pub use crate::backend::ops::Activation;

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
    /// `hidden_dropout_prob` (training only).
    pub hidden_dropout_prob: f64,
    /// `attention_probs_dropout_prob` (training only).
    pub attention_probs_dropout_prob: f64,
    /// `initializer_range`: the standard deviation of a new classifier's weights.
    pub initializer_range: f64,
    /// `drop_path_rate`: TimeSformer's stochastic depth, rising linearly from 0 at
    /// the first layer to this at the last (training only; the others have none).
    pub drop_path_rate: f64,
    /// VideoMAE: mean-pool tokens then `fc_norm` (true), or final `layernorm` and token 0.
    pub use_mean_pooling: bool,
    /// V-JEPA 2: self-attention layers of the attentive pooler (`num_pooler_layers`).
    pub num_pooler_layers: usize,
    /// V-JEPA 2: the pooler's attention dropout (`attention_dropout`; training only).
    pub pooler_attention_dropout: f64,
    /// VideoPrism: blocks over each patch position's frames (`num_temporal_layers`;
    /// `num_hidden_layers` holds `num_spatial_layers`).
    pub num_temporal_layers: usize,
    /// VideoPrism: `attn_logit_softcapping` of the encoder's attention (0: none).
    pub attn_logit_softcapping: f64,
    /// Class names by index (`id2label`).
    pub labels: Vec<String>,
    /// The whole `config.json`, to write back on export with only the labels changed.
    pub raw: Value,
}

impl ModelConfig {
    /// The dropout probabilities of encoder layer `layer` ([`super::layers::Rates`]); drop-path is
    /// `torch.linspace(0, drop_path_rate, num_hidden_layers)[layer]`, as TimeSformer's layers take it.
    pub fn rates(&self, layer: usize) -> super::layers::Rates {
        let n = self.num_hidden_layers;
        let path = if n > 1 { (self.drop_path_rate * layer as f64 / (n - 1) as f64) as f32 as f64 } else { 0.0 };
        super::layers::Rates { hidden: self.hidden_dropout_prob, attention: self.attention_probs_dropout_prob, path }
    }

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

    /// Parses a `config.json` value. A key that is there must have its JSON
    /// type (`"hidden_size": "48"` is an error, not the default).
    pub fn from_json(raw: Value) -> Result<ModelConfig, String> {
        if !raw.is_object() {
            return Err("config.json must hold a JSON object".into());
        }
        let model_type = string(&raw, "model_type")?.unwrap_or_default();
        let Some(arch) = Architecture::from_model_type(model_type) else {
            if model_type == "videoprism" {
                return Err("model_type 'videoprism' is VideoPrism's video-text model (VideoPrismClipModel): vidi \
                            takes its vision model, model_type 'videoprism_vision_model'"
                    .into());
            }
            return Err(format!(
                "model_type '{model_type}' is not VideoMAE, TimeSformer, ViViT, V-JEPA 2 or VideoPrism \
                 (videoprism_vision_model)"
            ));
        };
        let int = |k: &str, d: usize| uint(&raw, k, d);
        let (frames, tubelet, patch, eps, act) = match arch {
            Architecture::VideoMae => (16, int("tubelet_size", 2)?, int("patch_size", 16)?, 1e-12, "gelu"),
            Architecture::Timesformer => (8, 1, int("patch_size", 16)?, 1e-6, "gelu"),
            Architecture::Vivit => {
                let t = match field(&raw, "tubelet_size") {
                    None => None,
                    Some(Value::Array(a)) => Some(a.iter().map(Value::as_u64).collect::<Option<Vec<_>>>()),
                    Some(v) => return Err(wrong_type("tubelet_size", "[t, h, w]", v)),
                };
                let (tt, th, tw) = match t {
                    None => (2, 16, 16),
                    Some(Some(v)) if v.len() == 3 => (v[0] as usize, v[1] as usize, v[2] as usize),
                    Some(_) => return Err("tubelet_size must be [t, h, w], three whole numbers".into()),
                };
                if th != tw {
                    return Err(format!("non-square tubelets ({th}x{tw}) are not supported"));
                }
                (32, tt, th, 1e-6, "gelu_fast")
            }
            Architecture::Vjepa2 => (64, int("tubelet_size", 2)?, int("patch_size", 16)?, 1e-6, "gelu"),
            // Per-frame patches: tubelet_size [1, p, p]; the layers need 1 frame per tubelet.
            Architecture::VideoPrism => {
                let t = match field(&raw, "tubelet_size") {
                    None => Some(vec![1, 18, 18]),
                    Some(Value::Array(a)) => a.iter().map(Value::as_u64).collect::<Option<Vec<_>>>(),
                    Some(v) => return Err(wrong_type("tubelet_size", "[1, p, p]", v)),
                };
                let p = match t.as_deref() {
                    Some([1, h, w]) if h == w => *h as usize,
                    Some([1, h, w]) => {
                        return Err(format!("tubelet_size: non-square patches ({h}x{w}) are not supported"))
                    }
                    Some([t, _, _]) => {
                        return Err(format!(
                        "tubelet_size [{t}, ..]: VideoPrism's layers take one frame per patch (tubelet_size [1, p, p])"
                    ))
                    }
                    _ => return Err("tubelet_size must be [1, p, p], three whole numbers".into()),
                };
                (16, 1, p, 1e-6, "gelu_python")
            }
        };
        let videoprism = arch == Architecture::VideoPrism;
        // V-JEPA 2 names its sizes differently: crop_size, frames_per_clip, in_chans, mlp_ratio.
        let vjepa2 = arch == Architecture::Vjepa2;
        let (k_image, k_frames, k_channels, image) = if vjepa2 {
            ("crop_size", "frames_per_clip", "in_chans", 256)
        } else {
            ("image_size", "num_frames", "num_channels", 224)
        };
        let (hidden, layers, heads) = if vjepa2 { (1024, 24, 16) } else { (768, 12, 12) };
        // VideoPrism's image_size may be [height, width]; its layers: num_spatial_layers + num_temporal_layers.
        let image = if videoprism { 288 } else { image };
        let image_size = match field(&raw, k_image) {
            Some(Value::Array(a)) if videoprism => match a.iter().map(Value::as_u64).collect::<Option<Vec<_>>>() {
                Some(v) if v.len() == 2 && v[0] == v[1] => v[0] as usize,
                Some(v) if v.len() == 2 => {
                    return Err(format!("image_size {}x{}: non-square inputs are not supported", v[0], v[1]))
                }
                _ => return Err(wrong_type(k_image, "a whole number or [height, width]", &Value::Array(a.clone()))),
            },
            _ => int(k_image, image)?,
        };
        let k_layers = if videoprism { "num_spatial_layers" } else { "num_hidden_layers" };
        let num_temporal_layers = if videoprism { int("num_temporal_layers", 4)? } else { 0 };
        let attn_logit_softcapping = if videoprism {
            // transformers passes it to the attention as `softcap` (None: no cap).
            let cap = match raw.get("attn_logit_softcapping") {
                None => 50.0,
                Some(Value::Null) => 0.0,
                Some(v) => v.as_f64().ok_or_else(|| wrong_type("attn_logit_softcapping", "a number or null", v))?,
            };
            let null = raw.get("attn_logit_softcapping").is_some_and(Value::is_null);
            if !(cap.is_finite() && (cap > 0.0 || null)) {
                return Err(format!("attn_logit_softcapping must be a number above 0 (or null for none), got {cap}"));
            }
            cap
        } else {
            0.0
        };
        let hidden_size = int("hidden_size", hidden)?;
        let intermediate_size = if vjepa2 {
            let ratio = number(&raw, "mlp_ratio")?.unwrap_or(4.0);
            if !(ratio.is_finite() && ratio > 0.0 && ratio <= 64.0) {
                return Err(format!("mlp_ratio must be a number above 0 (at most 64), got {ratio}"));
            }
            // transformers: int(hidden_size * mlp_ratio).
            (hidden_size as f64 * ratio) as usize
        } else {
            int("intermediate_size", 3072)?
        };
        let act = string(&raw, "hidden_act")?.unwrap_or(act);
        let Some(hidden_act) = Activation::from_name(act) else {
            return Err(format!("hidden_act '{act}' is not supported (vidi has {})", Activation::NAMES));
        };
        let probability = |k: &str| -> Result<f64, String> {
            let p = number(&raw, k)?.unwrap_or(0.0);
            if (0.0..=1.0).contains(&p) {
                Ok(p)
            } else {
                Err(format!("{k} must be a probability from 0 to 1, got {p}"))
            }
        };
        let (hidden_dropout_prob, attention_probs_dropout_prob) =
            (probability("hidden_dropout_prob")?, probability("attention_probs_dropout_prob")?);
        let initializer_range = number(&raw, "initializer_range")?.unwrap_or(0.02);
        if !(initializer_range.is_finite() && initializer_range >= 0.0) {
            return Err(format!("initializer_range must be a finite number of at least 0, got {initializer_range}"));
        }
        // Only TimeSformer's and V-JEPA 2's layers read drop_path_rate; the others' configs
        // may carry it unused, as in transformers. V-JEPA 2 has no hidden dropout.
        let drop_path_rate = if matches!(arch, Architecture::Timesformer | Architecture::Vjepa2) {
            probability("drop_path_rate")?
        } else {
            0.0
        };
        let hidden_dropout_prob = if vjepa2 { 0.0 } else { hidden_dropout_prob };
        let pooler_attention_dropout = if vjepa2 { probability("attention_dropout")? } else { 0.0 };
        if arch == Architecture::Timesformer {
            let at = string(&raw, "attention_type")?.unwrap_or("divided_space_time");
            if at != "divided_space_time" {
                return Err(format!("TimeSformer attention_type '{at}' is not supported (divided_space_time only)"));
            }
        }
        // transformers 5 writes `qv_bias` for VideoMAE; Hub configs say `qkv_bias`.
        let qkv_bias = boolean(&raw, "qkv_bias")?.or(boolean(&raw, "qv_bias")?).unwrap_or(true);
        let labels = labels_of(&raw)?;
        if let Some(pt) = string(&raw, "problem_type")?.filter(|pt| *pt != "single_label_classification") {
            return Err(format!(
                "problem_type '{pt}' is not supported: vidi trains and scores single-label classifiers (softmax \
                 scores, cross-entropy loss), problem_type single_label_classification"
            ));
        }
        let cfg = ModelConfig {
            arch,
            image_size,
            patch_size: patch,
            num_channels: int(k_channels, 3)?,
            num_frames: int(k_frames, frames)?,
            tubelet_size: tubelet,
            hidden_size,
            num_hidden_layers: int(k_layers, layers)?,
            num_attention_heads: int("num_attention_heads", heads)?,
            intermediate_size,
            hidden_act,
            layer_norm_eps: number(&raw, "layer_norm_eps")?.unwrap_or(eps),
            qkv_bias,
            hidden_dropout_prob,
            attention_probs_dropout_prob,
            drop_path_rate,
            initializer_range,
            use_mean_pooling: boolean(&raw, "use_mean_pooling")?.unwrap_or(true),
            num_pooler_layers: if vjepa2 { int("num_pooler_layers", 3)? } else { 0 },
            pooler_attention_dropout,
            num_temporal_layers,
            attn_logit_softcapping,
            labels,
            raw,
        };
        let sizes = [
            (k_image, cfg.image_size),
            ("patch_size", cfg.patch_size),
            (k_channels, cfg.num_channels),
            (k_frames, cfg.num_frames),
            ("hidden_size", cfg.hidden_size),
            ("num_attention_heads", cfg.num_attention_heads),
            ("intermediate_size", cfg.intermediate_size),
        ];
        if let Some((k, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{k} must be at least 1"));
        }
        if !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads) {
            return Err("hidden_size is not a multiple of num_attention_heads".into());
        }
        if cfg.patch_size == 0 || !cfg.image_size.is_multiple_of(cfg.patch_size) {
            return Err(format!("{k_image} {} is not a multiple of patch_size {}", cfg.image_size, cfg.patch_size));
        }
        if cfg.tubelet_size == 0 || !cfg.num_frames.is_multiple_of(cfg.tubelet_size) {
            return Err(format!(
                "{k_frames} {} is not a multiple of tubelet_size {}",
                cfg.num_frames, cfg.tubelet_size
            ));
        }
        if vjepa2 && !(cfg.hidden_size / cfg.num_attention_heads).is_multiple_of(2) {
            return Err(format!(
                "hidden_size / num_attention_heads = {} is odd: V-JEPA 2's rotary embeddings rotate pairs of dimensions",
                cfg.hidden_size / cfg.num_attention_heads
            ));
        }
        if cfg.num_pooler_layers > MAX_LAYERS {
            return Err(format!("num_pooler_layers {} is more than {MAX_LAYERS}", cfg.num_pooler_layers));
        }
        // What is built from the config before any weight is checked (the list of
        // layers, VideoMAE's position table) must stay small whatever the file says.
        if cfg.num_temporal_layers > MAX_LAYERS {
            return Err(format!("num_temporal_layers {} is more than {MAX_LAYERS}", cfg.num_temporal_layers));
        }
        if cfg.num_hidden_layers > MAX_LAYERS {
            return Err(format!("num_hidden_layers {} is more than {MAX_LAYERS}", cfg.num_hidden_layers));
        }
        let side = cfg.image_size / cfg.patch_size;
        let tokens = side.checked_mul(side).and_then(|s| s.checked_mul(cfg.num_frames / cfg.tubelet_size));
        let values = tokens.and_then(|t| t.checked_add(1)).and_then(|t| t.checked_mul(cfg.hidden_size));
        if values.is_none_or(|v| v > MAX_POSITION_VALUES) {
            return Err(format!(
                "num_frames {} / tubelet_size {} x (image_size {} / patch_size {})^2 tokens of hidden_size {} are \
                 more positions than any video transformer has (at most {MAX_POSITION_VALUES} values)",
                cfg.num_frames, cfg.tubelet_size, cfg.image_size, cfg.patch_size, cfg.hidden_size
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

/// transformers' `OPENAI_CLIP_MEAN` / `OPENAI_CLIP_STD` (LlavaOnevisionVideoProcessor's defaults).
#[allow(clippy::excessive_precision)]
const OPENAI_CLIP_MEAN: [f32; 3] = [0.48145466, 0.4578275, 0.40821073];
#[allow(clippy::excessive_precision)]
const OPENAI_CLIP_STD: [f32; 3] = [0.26862954, 0.26130258, 0.27577711];

/// The most encoder layers a config may state (video transformers have up to 48).
const MAX_LAYERS: usize = 1024;

/// The most values of a position table, (tokens + 1) x hidden_size: 2^24, 64 MiB
/// of f32 (VideoMAE-large at 320 pixels has 3.3 million).
const MAX_POSITION_VALUES: usize = 1 << 24;

/// The most labels `num_labels` may name (each gets a made-up name).
const MAX_LABELS: usize = 1 << 20;

/// The largest processor `size` or `crop_size` side, in pixels.
const MAX_SIDE: usize = 4096;

/// A key of a JSON object that is there and not `null`.
fn field<'a>(raw: &'a Value, k: &str) -> Option<&'a Value> {
    raw.get(k).filter(|v| !v.is_null())
}

/// The message for a key of the wrong JSON type.
fn wrong_type(k: &str, want: &str, got: &Value) -> String {
    format!("{k} must be {want}, got {got}")
}

/// A whole-number key, `default` when absent.
fn uint(raw: &Value, k: &str, default: usize) -> Result<usize, String> {
    match field(raw, k) {
        None => Ok(default),
        Some(v) => v.as_u64().map(|x| x as usize).ok_or_else(|| wrong_type(k, "a whole number", v)),
    }
}

/// A true/false key.
fn boolean(raw: &Value, k: &str) -> Result<Option<bool>, String> {
    field(raw, k).map(|v| v.as_bool().ok_or_else(|| wrong_type(k, "true or false", v))).transpose()
}

/// A number key.
fn number(raw: &Value, k: &str) -> Result<Option<f64>, String> {
    field(raw, k).map(|v| v.as_f64().ok_or_else(|| wrong_type(k, "a number", v))).transpose()
}

/// A string key.
fn string<'a>(raw: &'a Value, k: &str) -> Result<Option<&'a str>, String> {
    field(raw, k).map(|v| v.as_str().ok_or_else(|| wrong_type(k, "a string", v))).transpose()
}

/// `id2label` in index order, else `num_labels` names `LABEL_i`; neither gives no labels.
fn labels_of(raw: &Value) -> Result<Vec<String>, String> {
    let map = match field(raw, "id2label") {
        None => {
            let n = uint(raw, "num_labels", 0)?;
            if n > MAX_LABELS {
                return Err(format!("num_labels {n} is more than {MAX_LABELS}"));
            }
            return Ok((0..n).map(|i| format!("LABEL_{i}")).collect());
        }
        Some(Value::Object(map)) => map,
        Some(v) => return Err(wrong_type("id2label", "an object of index: name", v)),
    };
    let mut pairs = Vec::with_capacity(map.len());
    for (k, v) in map {
        let i: usize = k.parse().map_err(|_| format!("id2label key '{k}' is not an integer"))?;
        let name = v.as_str().ok_or_else(|| wrong_type(&format!("id2label \"{k}\""), "a string", v))?;
        pairs.push((i, name.to_string()));
    }
    pairs.sort();
    if pairs.iter().enumerate().any(|(i, (k, _))| i != *k) {
        return Err("id2label keys are not 0..n-1".into());
    }
    Ok(pairs.into_iter().map(|p| p.1).collect())
}

/// A processor size: a number (the shortest edge), `{"shortest_edge": n}` or `{"height": h, "width": w}`.
fn size_field(raw: &Value, k: &str) -> Result<Option<ProcessorSize>, String> {
    let Some(v) = field(raw, k) else { return Ok(None) };
    let whole = |x: Option<&Value>| x.filter(|x| !x.is_null()).map(|x| x.as_u64().map(|n| n as usize));
    let size = match v {
        Value::Number(n) => n.as_u64().map(|s| ProcessorSize::ShortestEdge { shortest_edge: s as usize }),
        Value::Object(o) => match (whole(o.get("shortest_edge")), whole(o.get("height")), whole(o.get("width"))) {
            (Some(Some(s)), _, _) => Some(ProcessorSize::ShortestEdge { shortest_edge: s }),
            (None, Some(Some(height)), Some(Some(width))) => Some(ProcessorSize::HeightWidth { height, width }),
            _ => None,
        },
        _ => None,
    };
    let size =
        size.ok_or_else(|| wrong_type(k, "a number, {\"shortest_edge\": n} or {\"height\": h, \"width\": w}", v))?;
    let sides = match size {
        ProcessorSize::ShortestEdge { shortest_edge } => [shortest_edge, shortest_edge],
        ProcessorSize::HeightWidth { height, width } => [height, width],
    };
    if sides.iter().any(|s| !(1..=MAX_SIDE).contains(s)) {
        return Err(format!(
            "{k} {v} is not 1 to {MAX_SIDE} pixels (every frame is resized or cropped to it, and no video model \
             takes larger pictures)"
        ));
    }
    Ok(Some(size))
}

/// Whether `config.json` says how many labels there are (`id2label` or `num_labels`).
pub fn states_labels(raw: &Value) -> bool {
    field(raw, "id2label").is_some() || field(raw, "num_labels").is_some()
}

/// The processor file of an architecture's checkpoints: `preprocessor_config.json`, or for
/// V-JEPA 2 the `video_preprocessor_config.json` transformers 5 writes (the other name where only it is there).
pub fn processor_file(dir: &Path, arch: Architecture) -> std::path::PathBuf {
    let video = dir.join("video_preprocessor_config.json");
    let video_first = matches!(arch, Architecture::Vjepa2 | Architecture::VideoPrism);
    if video_first && (video.exists() || !dir.join("preprocessor_config.json").exists()) {
        video
    } else {
        dir.join("preprocessor_config.json")
    }
}

/// Reads the processor file ([`processor_file`]); fields it lacks take the defaults of
/// the architecture's processor.
pub fn read_processor(dir: &Path, arch: Architecture) -> Result<ImageProcessor, ModelError> {
    let path = processor_file(dir, arch);
    let raw: Value = if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
        serde_json::from_str(&text).map_err(|e| ModelError::BadConfig { path: path.clone(), reason: e.to_string() })?
    } else {
        Value::Null
    };
    processor_from_json(&raw, arch).map_err(|reason| ModelError::BadConfig { path, reason })
}

/// The processor of the model of `config` in `dir`: its processor file
/// ([`read_processor`]); where the checkpoint has none (a model saved by
/// `save_pretrained` alone, which transformers' pipeline cannot run), the
/// architecture's processor defaults with their picture sizes fitted to the
/// model's `image_size` ([`fit_processor`]), so its clips fit the model.
pub fn model_processor(dir: &Path, config: &ModelConfig) -> Result<ImageProcessor, ModelError> {
    let mut p = read_processor(dir, config.arch)?;
    if !processor_file(dir, config.arch).exists() {
        fit_processor(&mut p, config.arch, config.image_size);
    }
    Ok(p)
}

/// Fits a processor's default sizes to a model of `side x side` pictures, keeping the
/// defaults' proportion of resize to crop: the crop becomes `side`, the resize
/// `side` scaled as the default resize is to the default crop (VideoMAE's
/// 224 / 224, ViViT's 256 / 224; V-JEPA 2's `int(crop x 256 / 224)`), and a
/// fixed resize (VideoPrism's 288 x 288) becomes `side x side`.
pub fn fit_processor(p: &mut ImageProcessor, arch: Architecture, side: usize) {
    let (crop, _) = p.crop_size;
    if crop == side || crop == 0 {
        return;
    }
    p.size = match p.size {
        ProcessorSize::ShortestEdge { shortest_edge } => ProcessorSize::ShortestEdge {
            shortest_edge: if arch == Architecture::Vjepa2 {
                vjepa2_shortest_edge(side)
            } else {
                shortest_edge * side / crop
            },
        },
        ProcessorSize::HeightWidth { .. } => ProcessorSize::HeightWidth { height: side, width: side },
    };
    p.crop_size = (side, side);
}

/// VJEPA2VideoProcessor's resize for a crop of `crop`: `int(crop * 256 / 224)`.
fn vjepa2_shortest_edge(crop: usize) -> usize {
    crop * 256 / 224
}

/// Parses a processor config (see [`read_processor`]). A key that is there
/// must have its JSON type; `image_std` must be non-zero and finite, and
/// `image_mean` finite (as f32), or every pixel would come out NaN or infinite.
pub fn processor_from_json(raw: &Value, arch: Architecture) -> Result<ImageProcessor, String> {
    if !raw.is_object() && !raw.is_null() {
        return Err("preprocessor_config.json must hold a JSON object".into());
    }
    let mut p = ImageProcessor::default();
    if arch == Architecture::Vivit {
        p.rescale_factor = 1.0 / 127.5;
        p.offset = true;
        p.image_mean = [0.5; 3];
        p.image_std = [0.5; 3];
    }
    if arch == Architecture::Vjepa2 {
        // VJEPA2VideoProcessor: crop 256, ImageNet mean/std (the defaults), bilinear.
        p.crop_size = (256, 256);
    }
    if arch == Architecture::VideoPrism {
        // transformers 5 pairs VideoPrism with LlavaOnevisionVideoProcessor, used with
        // VideoPrismProcessor's video defaults: resize to 288 x 288 (bicubic), no crop,
        // 1/255, no normalisation (OpenAI CLIP mean/std when a file turns it on).
        p.size = ProcessorSize::HeightWidth { height: 288, width: 288 };
        p.do_center_crop = false;
        p.crop_size = (288, 288);
        p.do_normalize = false;
        p.image_mean = OPENAI_CLIP_MEAN;
        p.image_std = OPENAI_CLIP_STD;
        p.resample = Resample::Bicubic;
    }
    let b = |k: &str, d: bool| boolean(raw, k).map(|v| v.unwrap_or(d));
    p.do_resize = b("do_resize", p.do_resize)?;
    p.do_center_crop = b("do_center_crop", p.do_center_crop)?;
    p.do_rescale = b("do_rescale", p.do_rescale)?;
    p.do_normalize = b("do_normalize", p.do_normalize)?;
    // `offset` is ViViT's processor's alone: the others have no such step and ignore the key.
    if arch == Architecture::Vivit {
        p.offset = b("offset", p.offset)?;
    }
    if let Some(f) = number(raw, "rescale_factor")? {
        p.rescale_factor = f as f32;
        if !p.rescale_factor.is_finite() {
            return Err(format!("rescale_factor must be a finite number, got {f}"));
        }
    }
    if let Some(s) = size_field(raw, "size")? {
        p.size = s;
    }
    match size_field(raw, "crop_size")? {
        Some(ProcessorSize::ShortestEdge { shortest_edge: s }) => p.crop_size = (s, s),
        Some(ProcessorSize::HeightWidth { height, width }) => p.crop_size = (height, width),
        None => {}
    }
    let triple = |k: &str| -> Result<Option<[f32; 3]>, String> {
        let Some(v) = field(raw, k) else { return Ok(None) };
        let t = match v {
            Value::Array(a) if a.len() == 3 => {
                a.iter().map(|x| x.as_f64().map(|x| x as f32)).collect::<Option<Vec<f32>>>().map(|x| [x[0], x[1], x[2]])
            }
            Value::Number(n) => n.as_f64().map(|x| [x as f32; 3]),
            _ => None,
        };
        t.map(Some).ok_or_else(|| wrong_type(k, "three numbers (one per channel) or a number", v))
    };
    if let Some(m) = triple("image_mean")? {
        if m.iter().any(|x| !x.is_finite()) {
            return Err(format!(
                "image_mean must be finite numbers, got {}",
                field(raw, "image_mean").unwrap_or(&Value::Null)
            ));
        }
        p.image_mean = m;
    }
    if let Some(s) = triple("image_std")? {
        if s.iter().any(|x| !x.is_finite() || *x == 0.0) {
            return Err(format!(
                "image_std must be non-zero, finite numbers (pixels are divided by it), got {}",
                field(raw, "image_std").unwrap_or(&Value::Null)
            ));
        }
        p.image_std = s;
    }
    if arch == Architecture::Vjepa2 {
        // VJEPA2VideoProcessor sets the resize from the crop whatever `size` says.
        p.size = ProcessorSize::ShortestEdge { shortest_edge: vjepa2_shortest_edge(p.crop_size.0) };
    }
    match field(raw, "resample") {
        None => {}
        Some(v) if v.as_u64() == Some(2) => p.resample = Resample::Bilinear,
        // Bicubic is the video processors' (torchvision) filter: VideoPrism's.
        Some(v) if v.as_u64() == Some(3) && arch == Architecture::VideoPrism => p.resample = Resample::Bicubic,
        Some(v) => {
            let which = if arch == Architecture::VideoPrism { "2 (bilinear) or 3 (bicubic)" } else { "2 (bilinear)" };
            return Err(format!("resample {v} is not supported ({which}, what the checkpoints use)"));
        }
    }
    Ok(p)
}
