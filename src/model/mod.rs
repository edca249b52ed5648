//! The five video transformers in Burn (VideoMAE, TimeSformer, ViViT, V-JEPA 2,
//! VideoPrism), loaded from (and exported to) the transformers checkpoint layout.
//!
//! - [`config`]: `config.json` / `preprocessor_config.json`, and the one
//!   [`Architecture`] enum the CLI and the app use too.
//! - [`weights`]: safetensors (single or sharded) and pickle `.bin` reading, safetensors writing.
//! - [`checkpoint`]: checkpoint tensors to and from modules, both directions
//!   from one walk of each architecture's key table.
//! - [`layers`]: attention, MLP, blocks, tubelet embedding, as plain math over
//!   [`crate::backend::ops`].
//! - [`videomae`], [`timesformer`], [`vivit`], [`vjepa2`], [`videoprism`]: the
//!   architectures, each with its one key table (`keys` and its `walk`) and one
//!   forward pass.
//! - [`resize`]: what clips of another size than the config's may do
//!   (`interpolate_pos_encoding`).

pub mod checkpoint;
pub mod config;
pub mod layers;
pub mod resize;
pub mod timesformer;
pub mod videomae;
pub mod videoprism;
pub mod vivit;
pub mod vjepa2;
pub mod weights;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};
use serde::Serialize;

pub use config::{Architecture, ModelConfig};
use weights::TensorMap;

use crate::backend::{to_device, to_host, HostTensor};

use crate::dataset::transforms::{ImageProcessor, ProcessorSize, Resample};

/// What went wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The folder has no weights file.
    #[error("{path}: no model.safetensors, model.safetensors.index.json or pytorch_model.bin")]
    NoWeights {
        /// The folder.
        path: PathBuf,
    },
    /// `config.json` is missing a needed value or has one vidi does not support.
    #[error("{path}: {reason}")]
    BadConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The weights file cannot be read.
    #[error("{path}: {reason}")]
    BadCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A weight the architecture needs is not in the checkpoint.
    #[error("{path}: weight '{key}' is missing (is this checkpoint the architecture its config.json says?)")]
    MissingWeight {
        /// The weights file.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// A weight has the wrong shape for the config.
    #[error("{path}: weight '{key}' has shape {found:?}, the config implies {expected:?}")]
    WeightShape {
        /// The weights file.
        path: PathBuf,
        /// The key.
        key: String,
        /// Shape from the config.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// A weight holds NaN or infinite values: every output would be garbage.
    #[error(
        "{path}: weight '{key}' holds {count} NaN or infinite value{} (of {total}); the checkpoint is damaged \
         or was saved from a run that diverged",
        if *.count == 1 { "" } else { "s" }
    )]
    NonFinite {
        /// The weights file.
        path: PathBuf,
        /// The key.
        key: String,
        /// Values that are NaN or infinite.
        count: usize,
        /// Values in the tensor.
        total: usize,
    },
    /// A clip of another size than the config's that the architecture cannot take
    /// ([`VideoModel::forward_interpolated`]).
    #[error("{0}")]
    OtherSize(String),
    /// An input the model cannot take.
    #[error("the model takes (batch, {frames}, {channels}, {size}, {size}) clips; got {got:?}")]
    BadInput {
        /// Frames the model takes.
        frames: usize,
        /// Channels.
        channels: usize,
        /// Height = width.
        size: usize,
        /// The shape given.
        got: Vec<usize>,
    },
}

/// What to do with the checkpoint's classifier.
#[derive(Clone, Debug)]
pub enum Head {
    /// Keep it (the checkpoint's labels).
    Checkpoint {
        /// Number of labels.
        labels: usize,
    },
    /// Drop it and start a new one for these labels (`ignore_mismatched_sizes`).
    New {
        /// The new labels.
        labels: Vec<String>,
        /// Seed of the initialisation.
        seed: u64,
        /// Standard deviation of the new weights (`initializer_range`).
        std: f32,
    },
}

/// What a load took, left and made up: transformers' loading report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadReport {
    /// Checkpoint keys the model did not use (e.g. a dropped classifier).
    pub unused: Vec<String>,
    /// Pre-training-only keys (decoder, `encoder_to_decoder`, `mask_token`), ignored.
    pub ignored_pretraining: Vec<String>,
    /// Model weights not in the checkpoint, newly initialised.
    pub newly_initialized: Vec<String>,
    /// The weights file read.
    pub source: PathBuf,
}

/// The network of one of the five architectures.
#[derive(burn::module::Module, Debug)]
pub enum Net {
    /// VideoMAE.
    VideoMae(videomae::VideoMae),
    /// TimeSformer.
    Timesformer(timesformer::Timesformer),
    /// ViViT.
    Vivit(vivit::Vivit),
    /// V-JEPA 2.
    Vjepa2(vjepa2::Vjepa2),
    /// VideoPrism.
    VideoPrism(videoprism::VideoPrism),
}

impl Net {
    /// Builds the network `config` describes from checkpoint tensors.
    fn build(config: &ModelConfig, w: &mut TensorMap, head: &Head, device: &Device) -> Result<Net, ModelError> {
        let mut net = match config.arch {
            Architecture::VideoMae => Net::VideoMae(videomae::VideoMae::empty(config, device)),
            Architecture::Timesformer => Net::Timesformer(timesformer::Timesformer::empty(config)),
            Architecture::Vivit => Net::Vivit(vivit::Vivit::empty(config)),
            Architecture::Vjepa2 => Net::Vjepa2(vjepa2::Vjepa2::empty(config)),
            Architecture::VideoPrism => Net::VideoPrism(videoprism::VideoPrism::empty(config)),
        };
        net.walk(config, &mut checkpoint::Load { weights: w, head, device })?;
        Ok(net)
    }

    /// Walks the architecture's key table (loading or exporting).
    fn walk(&mut self, config: &ModelConfig, w: &mut impl checkpoint::Walk) -> Result<(), ModelError> {
        match self {
            Net::VideoMae(m) => m.walk(config, w),
            Net::Timesformer(m) => m.walk(config, w),
            Net::Vivit(m) => m.walk(config, w),
            Net::Vjepa2(m) => m.walk(config, w),
            Net::VideoPrism(m) => m.walk(config, w),
        }
    }
}

/// A loaded video classifier: network, config, labels and the checkpoint's preprocessing.
#[derive(Debug)]
pub struct VideoModel {
    /// The config (labels updated when the head was replaced).
    pub config: ModelConfig,
    /// The checkpoint's image processor.
    pub processor: ImageProcessor,
    /// The network.
    pub net: Net,
    /// Label names by index.
    pub labels: Vec<String>,
    /// Where it computes.
    pub device: Device,
}

/// How to load.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Fine-tune to these labels: when they differ from the checkpoint's, the
    /// classifier is dropped and a new one initialised.
    pub labels: Option<Vec<String>>,
    /// Seed of a new head's initialisation.
    pub seed: u64,
}

/// Whether `dir` holds a model vidi can load, read without its weights: a
/// `config.json` of a supported architecture, with its values of the right
/// types, and a weights file. Its config, or why not in one line.
pub fn check_folder(dir: &Path) -> Result<ModelConfig, ModelError> {
    let config = ModelConfig::from_dir(dir)?;
    if !weights::WEIGHT_FILES.iter().any(|w| dir.join(w).is_file()) {
        return Err(ModelError::NoWeights { path: dir.to_path_buf() });
    }
    Ok(config)
}

impl VideoModel {
    /// Loads a model folder in the transformers layout.
    pub fn load(dir: &Path, opts: &LoadOptions, device: &Device) -> Result<(VideoModel, LoadReport), ModelError> {
        if !dir.is_dir() {
            return Err(ModelError::Io {
                path: dir.into(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such model folder"),
            });
        }
        let mut config = ModelConfig::from_dir(dir)?;
        let processor = config::model_processor(dir, &config)?;
        let mut w = weights::read_checkpoint(dir)?;
        if config.arch == Architecture::VideoPrism {
            // The vision model's own checkpoints name the encoder without the classifier's prefix.
            w.add_prefix_if_missing(videoprism::keys::PREFIX, videoprism::keys::NORM1);
        }
        let mut report = LoadReport { source: w.source.clone(), ..Default::default() };

        let config_path = dir.join("config.json");
        let ckpt_labels = classifier_rows(&config, &w)?;
        let head = match &opts.labels {
            Some(labels) if labels.is_empty() => {
                return Err(ModelError::BadConfig { path: config_path, reason: "no labels to fine-tune for".into() })
            }
            Some(labels) if Some(labels.len()) != ckpt_labels || *labels != config.labels => {
                Head::New { labels: labels.clone(), seed: opts.seed, std: config.initializer_range as f32 }
            }
            _ => match ckpt_labels {
                Some(0) => {
                    return Err(ModelError::BadCheckpoint {
                        path: w.source.clone(),
                        reason: "the classifier (classifier.weight) has 0 rows: a model without labels cannot \
                                 classify (fine-tune it with `vidi train` to give it labels)"
                            .into(),
                    })
                }
                Some(n) => Head::Checkpoint { labels: n },
                None => {
                    return Err(ModelError::BadConfig {
                        path: config_path,
                        reason: "the checkpoint has no classifier (a pre-training checkpoint?): give the labels to fine-tune for".into(),
                    })
                }
            },
        };
        if let Head::New { labels, .. } = &head {
            report.newly_initialized.extend(["classifier.weight".to_string(), "classifier.bias".to_string()]);
            config.labels = labels.clone();
        } else if let Some(n) = ckpt_labels.filter(|n| *n != config.labels.len()) {
            if config::states_labels(&config.raw) {
                let said = if config.raw.get("id2label").is_some_and(|v| !v.is_null()) {
                    let k = config.labels.len();
                    format!("id2label names {k} label{}", if k == 1 { "" } else { "s" })
                } else {
                    format!("num_labels is {}", config.labels.len())
                };
                return Err(ModelError::BadConfig {
                    path: config_path,
                    reason: format!(
                        "{said}, but the classifier in {} has {n} rows (one per label): the config and the weights \
                         do not belong together",
                        file_name(&w.source)
                    ),
                });
            }
            // The config names no labels at all: transformers' default names.
            config.labels = (0..n).map(|i| format!("LABEL_{i}")).collect();
        }

        // A head norm missing from the checkpoint (pre-training checkpoints) starts as identity.
        if config.arch == Architecture::VideoMae {
            let d = config.hidden_size;
            let key = if config.use_mean_pooling { videomae::keys::FC_NORM } else { videomae::keys::NORM };
            if !w.contains(&format!("{key}.weight")) {
                let mut all = BTreeMap::new();
                all.insert(format!("{key}.weight"), HostTensor::new(vec![d], vec![1.0; d]));
                all.insert(format!("{key}.bias"), HostTensor::new(vec![d], vec![0.0; d]));
                w.insert_missing(all);
                report.newly_initialized.extend([format!("{key}.weight"), format!("{key}.bias")]);
            }
        }

        // A checkpoint of the vision model alone (the published ones) gets a new pooling head.
        if config.arch == Architecture::VideoPrism && !w.contains("head.pooling_attention_query") {
            let new = videoprism::new_head(&config, opts.seed);
            report.newly_initialized.extend(new.keys().filter(|k| !w.contains(k)).cloned());
            w.insert_missing(new);
            report.newly_initialized.sort();
        }

        let net = Net::build(&config, &mut w, &head, device)?;
        let unused = w.unused();
        check_no_extra_layers(&config, &unused, &w.source, &config_path)?;
        for k in unused {
            let pretraining = match config.arch {
                Architecture::Vjepa2 => k.starts_with(vjepa2::keys::PREDICTOR),
                _ => videomae::keys::PRETRAINING_ONLY.iter().any(|p| k.starts_with(p)),
            };
            if pretraining {
                report.ignored_pretraining.push(k);
            } else {
                report.unused.push(k);
            }
        }
        let labels = config.labels.clone();
        Ok((VideoModel { config, processor, net, labels, device: device.clone() }, report))
    }

    /// A model of `config`'s shape with random weights (normal(0, 0.02), LayerNorms as
    /// identity), for training from scratch and for benchmarks.
    pub fn random(
        config: ModelConfig,
        processor: ImageProcessor,
        seed: u64,
        device: &Device,
    ) -> Result<VideoModel, ModelError> {
        let mut w = TensorMap::synthetic(seed);
        if config.arch == Architecture::VideoPrism {
            w.insert_missing(videoprism::identity_norms(&config));
        }
        let head = Head::Checkpoint { labels: config.labels.len().max(1) };
        let net = Net::build(&config, &mut w, &head, device)?;
        let labels = config.labels.clone();
        Ok(VideoModel { config, processor, net, labels, device: device.clone() })
    }

    /// Checks a (batch, frames, channels, height, width) shape against the config.
    pub fn check_input(&self, shape: &[usize]) -> Result<(), ModelError> {
        let c = &self.config;
        let ok = shape.len() == 5
            && shape[0] > 0
            && shape[1] == c.num_frames
            && shape[2] == c.num_channels
            && shape[3] == c.image_size
            && shape[4] == c.image_size;
        if ok {
            Ok(())
        } else {
            Err(ModelError::BadInput {
                frames: c.num_frames,
                channels: c.num_channels,
                size: c.image_size,
                got: shape.to_vec(),
            })
        }
    }

    /// Logits for `pixel_values` (batch, frames, channels, height, width), normalised:
    /// evaluation, every dropout off.
    pub fn forward(&self, pixel_values: Tensor<5>) -> Result<Tensor<2>, ModelError> {
        self.run(pixel_values, None)
    }

    /// [`VideoModel::forward`] in training: the config's dropouts and drop-path
    /// (`hidden_dropout_prob`, `attention_probs_dropout_prob`, `drop_path_rate`)
    /// apply where transformers applies them, their masks drawn from `seed`
    /// alone (the same seed gives the same masks, on any device).
    pub fn forward_train(&self, pixel_values: Tensor<5>, seed: u64) -> Result<Tensor<2>, ModelError> {
        self.run(pixel_values, Some(seed))
    }

    /// [`VideoModel::forward`] on a clip of another frame count or picture size than the
    /// config's, as transformers computes it (`interpolate_pos_encoding`): V-JEPA 2's rotary
    /// positions and VideoMAE's sinusoid table are computed for the clip's tokens,
    /// TimeSformer's position embeddings interpolated (nearest) to its patch grid,
    /// VideoPrism's spatial and temporal tables resized (bilinear, antialiased). What
    /// transformers cannot run (ViViT; TimeSformer with another frame count) is refused
    /// in one line ([`resize::check`]).
    pub fn forward_interpolated(&self, pixel_values: Tensor<5>) -> Result<Tensor<2>, ModelError> {
        resize::check(&self.config, &pixel_values.dims())?;
        Ok(self.dispatch(pixel_values, None))
    }

    fn run(&self, pixel_values: Tensor<5>, seed: Option<u64>) -> Result<Tensor<2>, ModelError> {
        self.check_input(&pixel_values.dims())?;
        Ok(self.dispatch(pixel_values, seed))
    }

    fn dispatch(&self, pixel_values: Tensor<5>, seed: Option<u64>) -> Tensor<2> {
        match &self.net {
            Net::VideoMae(m) => m.forward(pixel_values, seed),
            Net::Timesformer(m) => m.forward(pixel_values, seed),
            Net::Vivit(m) => m.forward(pixel_values, seed),
            Net::Vjepa2(m) => m.forward(pixel_values, seed),
            Net::VideoPrism(m) => m.forward(pixel_values, seed),
        }
    }

    /// [`VideoModel::forward`] on host data.
    pub fn forward_host(&self, pixel_values: HostTensor) -> Result<HostTensor, ModelError> {
        self.forward_host_with(pixel_values, false)
    }

    /// [`VideoModel::forward_host`], or with `interpolate` [`VideoModel::forward_interpolated`].
    pub fn forward_host_with(&self, pixel_values: HostTensor, interpolate: bool) -> Result<HostTensor, ModelError> {
        if interpolate {
            resize::check(&self.config, &pixel_values.shape)?;
        } else {
            self.check_input(&pixel_values.shape)?;
        }
        let forward = |x: Tensor<5>| if interpolate { self.forward_interpolated(x) } else { self.forward(x) };
        let (b, per) = (pixel_values.shape[0], self.clips_per_pass());
        if b <= per {
            let x: Tensor<5> = to_device(pixel_values, &self.device);
            return Ok(to_host(forward(x)?));
        }
        // Off the CPU, a large batch runs in pieces, each activation within the device's buffers.
        let clip: usize = pixel_values.shape[1..].iter().product();
        let mut logits = Vec::new();
        for piece in pixel_values.data.chunks(per * clip) {
            let mut shape = pixel_values.shape.clone();
            shape[0] = piece.len() / clip;
            let x: Tensor<5> = to_device(HostTensor::new(shape, piece.to_vec()), &self.device);
            logits.extend(to_host(forward(x)?).data);
        }
        let labels = logits.len() / b;
        Ok(HostTensor::new(vec![b, labels], logits))
    }

    /// Clips per forward pass on the model's device (see [`crate::backend::ops::clips_per_pass`]).
    pub fn clips_per_pass(&self) -> usize {
        let c = &self.config;
        let tokens = c.num_patches() + 1; // the class token, where there is one
        let width = c.intermediate_size.max(3 * c.hidden_size);
        crate::backend::ops::clips_per_pass(&self.device, tokens, width)
    }

    /// The weights under their transformers names.
    pub fn export_tensors(&self) -> BTreeMap<String, HostTensor> {
        let mut out = checkpoint::Export::default();
        // The walk needs the network mutably; a clone shares its tensors, and
        // exporting never fails.
        let _ = self.net.clone().walk(&self.config, &mut out);
        out.tensors
    }

    /// Writes the model in the transformers layout: `config.json` (labels,
    /// `architectures`), `preprocessor_config.json`, `model.safetensors`.
    /// Each file is written atomically.
    pub fn export(&self, dir: &Path) -> Result<(), ModelError> {
        std::fs::create_dir_all(dir).map_err(|source| ModelError::Io { path: dir.into(), source })?;
        let config = serde_json::to_string_pretty(&self.config.to_json_with_labels(&self.labels)).unwrap_or_default();
        let path = dir.join("config.json");
        crate::util::write_atomic(&path, config.as_bytes()).map_err(|source| ModelError::Io { path, source })?;
        let processor =
            serde_json::to_string_pretty(&processor_json(&self.processor, self.config.arch)).unwrap_or_default();
        // V-JEPA 2's and VideoPrism's processor file is transformers 5's video_preprocessor_config.json.
        let path = if matches!(self.config.arch, Architecture::Vjepa2 | Architecture::VideoPrism) {
            dir.join("video_preprocessor_config.json")
        } else {
            dir.join("preprocessor_config.json")
        };
        crate::util::write_atomic(&path, processor.as_bytes()).map_err(|source| ModelError::Io { path, source })?;
        weights::write_safetensors(&dir.join("model.safetensors"), &self.export_tensors())
    }
}

/// The rows (labels) of the checkpoint's classifier, when it has one.
fn classifier_rows(config: &ModelConfig, w: &TensorMap) -> Result<Option<usize>, ModelError> {
    let key = "classifier.weight";
    match w.shape(key) {
        None => Ok(None),
        Some([rows, _]) => Ok(Some(*rows)),
        Some(found) => Err(ModelError::WeightShape {
            path: w.source.clone(),
            key: key.into(),
            expected: vec![config.labels.len(), config.hidden_size],
            found: found.to_vec(),
        }),
    }
}

/// The key prefix of encoder layer `i`.
fn layer_key(arch: Architecture, i: usize) -> String {
    match arch {
        Architecture::VideoMae => videomae::keys::layer(i),
        Architecture::Timesformer => timesformer::keys::layer(i),
        Architecture::Vivit => vivit::keys::layer(i),
        Architecture::Vjepa2 => vjepa2::keys::layer(i),
        Architecture::VideoPrism => videoprism::keys::spatial_layer(i),
    }
}

/// Refuses a checkpoint with encoder layers past `num_hidden_layers`: the
/// model would run without them and give other outputs than the checkpoint's.
fn check_no_extra_layers(
    config: &ModelConfig,
    unused: &[String],
    source: &Path,
    config_path: &Path,
) -> Result<(), ModelError> {
    let zero = layer_key(config.arch, 0);
    let base = zero.trim_end_matches('0');
    let extra: std::collections::BTreeSet<usize> = unused
        .iter()
        .filter_map(|k| {
            let (n, rest) = k.strip_prefix(base)?.split_once('.')?;
            let n: usize = n.parse().ok()?;
            (n >= config.num_hidden_layers && !rest.is_empty()).then_some(n)
        })
        .collect();
    let Some(&last) = extra.last() else { return Ok(()) };
    let names: Vec<String> = extra.iter().map(|i| format!("{}.*", layer_key(config.arch, *i))).collect();
    Err(ModelError::BadConfig {
        path: config_path.into(),
        reason: format!(
            "num_hidden_layers is {}, but {} also holds the weights of encoder layer{} {} ({}), which would be \
             left unused: set num_hidden_layers to {} or use the config that came with these weights",
            config.num_hidden_layers,
            file_name(source),
            if extra.len() == 1 { "" } else { "s" },
            extra.iter().map(usize::to_string).collect::<Vec<_>>().join(", "),
            names.join(", "),
            last + 1
        ),
    })
}

/// The last component of a path, for messages that already name its folder.
fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// A processor as `preprocessor_config.json`.
pub fn processor_json(p: &ImageProcessor, arch: Architecture) -> serde_json::Value {
    let size = match p.size {
        ProcessorSize::ShortestEdge { shortest_edge } => serde_json::json!({ "shortest_edge": shortest_edge }),
        ProcessorSize::HeightWidth { height, width } => serde_json::json!({ "height": height, "width": width }),
    };
    let class = match arch {
        Architecture::Vivit => "VivitImageProcessor",
        Architecture::Vjepa2 => "VJEPA2VideoProcessor",
        Architecture::VideoPrism => "LlavaOnevisionVideoProcessor",
        _ => "VideoMAEImageProcessor",
    };
    let mut v = serde_json::json!({
        "image_processor_type": class,
        "do_resize": p.do_resize,
        "size": size,
        "resample": match p.resample {
            Resample::Bilinear => 2,
            Resample::Bicubic => 3,
        },
        "do_center_crop": p.do_center_crop,
        "crop_size": { "height": p.crop_size.0, "width": p.crop_size.1 },
        "do_rescale": p.do_rescale,
        "rescale_factor": p.rescale_factor,
        "do_normalize": p.do_normalize,
        "image_mean": p.image_mean,
        "image_std": p.image_std,
    });
    if arch == Architecture::Vivit {
        v["offset"] = serde_json::json!(p.offset);
    }
    if matches!(arch, Architecture::Vjepa2 | Architecture::VideoPrism) {
        if let Some(o) = v.as_object_mut() {
            o.remove("image_processor_type");
        }
        v["video_processor_type"] = serde_json::json!(class);
    }
    v
}
