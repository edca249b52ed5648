//! Fine-tuning with the transformers Trainer's defaults, headless.
//!
//! A run lives in one folder:
//! - `config.json`: the [`TrainConfig`] (all `--resume` needs);
//! - `metrics.jsonl`: one JSON line per logged step and per evaluation;
//! - `checkpoint-epoch-N/` (and `checkpoint-step-S/` when stopped): the
//!   model in the transformers layout, `optimizer.safetensors` and
//!   `trainer_state.json`, each folder written aside and renamed into place;
//! - `best/`: the model with the best val accuracy, in the transformers layout;
//! - `test-eval/`: when there is a test split, the best model's report
//!   (`report.json`, `confusion.csv`, `confusion.png`);
//! - `.lock`: while a run is under way, its process id and command ([`lock`]):
//!   a second `vidi train` on the folder is refused.
//!
//! Before a run starts and before each epoch, the run folder's disk must have
//! room for the checkpoints still to come and a new `best/` ([`space`]).
//!
//! Every random choice derives from (seed, epoch, position), and a checkpoint
//! holds the weights and AdamW moments exactly, so a resumed run repeats the
//! uninterrupted one.

pub mod lock;
pub mod optim;
mod run;
pub mod space;

pub use run::{latest_checkpoint, resume_on, train_on};

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{activation, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::backend::{DeviceChoice, Scalar};
use crate::dataset::index::Unreadable;
use crate::dataset::loader::Example;
use crate::dataset::presets::TrainPreset;
use crate::dataset::{index_source, DataSource, IndexOptions, Layout};
use crate::eval::EvalReport;
use crate::model::{LoadReport, ModelError, VideoModel};
use optim::{AdamW, AdamWConfig, GradAccumulator, StepInfo};

/// Everything a run needs; saved as the run's `config.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Dataset folder in the split layout (`train/`, `val/`, optional `test/`).
    pub data: PathBuf,
    /// Base checkpoint: a folder in the transformers layout or a Hub id.
    pub model: String,
    /// Hub revision of `model`.
    pub revision: Option<String>,
    /// Epochs.
    pub epochs: usize,
    /// Clips per forward pass (the Trainer's `per_device_train_batch_size`).
    pub batch_size: usize,
    /// Forward passes whose gradients are summed into one optimizer step.
    pub grad_accum: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Fraction of the steps spent warming the learning rate up.
    pub warmup_ratio: f64,
    /// AdamW and clipping.
    pub adamw: AdamWConfig,
    /// Stop after this many optimizer steps instead of `epochs` full epochs.
    pub max_steps: Option<u64>,
    /// Seed of the head initialisation, data order and augmentations.
    pub seed: u64,
    /// Log (metrics.jsonl, console) every this many steps.
    pub logging_steps: u64,
    /// Decoding threads.
    pub workers: usize,
    /// Frame sampling rate of the clip window.
    pub sample_rate: usize,
    /// Nominal fps of the clip window.
    pub fps: f64,
    /// Random short-side range of the train augmentation (default: 256..320 scaled to the model's size).
    pub short_side: Option<(usize, usize)>,
    /// Probability of a horizontal flip.
    pub flip_p: f64,
    /// Where to compute.
    pub device: DeviceChoice,
    /// The largest share of a split's files (train, val or test) that may be
    /// unreadable; more stops the run before it starts. Each one is reported.
    #[serde(default = "default_max_unreadable")]
    pub max_unreadable: f64,
    /// A classes file for the lists (see [`crate::dataset::annotations`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<PathBuf>,
    /// Lists of the train split, read with `data` as the videos folder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub train_lists: Vec<PathBuf>,
    /// Lists of the val split.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub val_lists: Vec<PathBuf>,
    /// Lists of the test split.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test_lists: Vec<PathBuf>,
    /// Sample the classes evenly in training (`--balance`): each epoch draws as
    /// many examples as the train split holds, the same number from each class.
    #[serde(default)]
    pub balance: bool,
    /// f32, or f16: mixed precision on a GPU whose adapter has SHADER_F16
    /// (products in f16, f32 master weights and moments, dynamic loss scaling).
    #[serde(default)]
    pub precision: crate::backend::Precision,
}

impl TrainConfig {
    /// The dataset source: `data` with the lists and classes file.
    pub fn source(&self) -> crate::dataset::DataSource {
        crate::dataset::DataSource {
            path: self.data.clone(),
            classes: self.classes.clone(),
            train: self.train_lists.clone(),
            val: self.val_lists.clone(),
            test: self.test_lists.clone(),
        }
    }
}

/// [`TrainConfig::max_unreadable`]'s default: more than 1 file in 10 unreadable stops a run.
pub const DEFAULT_MAX_UNREADABLE: f64 = 0.1;

fn default_max_unreadable() -> f64 {
    DEFAULT_MAX_UNREADABLE
}

/// What `--resume` may change in a run's settings (saved back into its `config.json`).
#[derive(Clone, Debug, Default)]
pub struct ResumeOptions {
    /// A new number of epochs: the steps already done stay as they were, the
    /// rest follow the learning-rate schedule over the new total (as the
    /// transformers Trainer does when resumed with another `num_train_epochs`).
    /// At least the epochs already (partly) done.
    pub epochs: Option<usize>,
    /// A new [`TrainConfig::max_unreadable`].
    pub max_unreadable: Option<f64>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            data: PathBuf::new(),
            model: "MCG-NJU/videomae-base".into(),
            revision: None,
            epochs: 4,
            batch_size: 8,
            grad_accum: 1,
            lr: 5e-5,
            warmup_ratio: 0.1,
            adamw: AdamWConfig::default(),
            max_steps: None,
            seed: 42,
            logging_steps: 10,
            workers: crate::dataset::loader::default_workers(),
            sample_rate: 4,
            fps: 30.0,
            short_side: None,
            flip_p: 0.5,
            device: DeviceChoice::Auto,
            max_unreadable: DEFAULT_MAX_UNREADABLE,
            classes: None,
            train_lists: Vec::new(),
            val_lists: Vec::new(),
            test_lists: Vec::new(),
            balance: false,
            precision: crate::backend::Precision::F32,
        }
    }
}

/// Where a run is, saved in each checkpoint as `trainer_state.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimizer steps done.
    pub global_step: u64,
    /// Epoch of the next step (0-based).
    pub epoch: u64,
    /// Steps of that epoch already done.
    pub step_in_epoch: u64,
    /// Best val accuracy so far.
    pub best_accuracy: Option<f64>,
    /// Step of the best model.
    pub best_step: Option<u64>,
    /// AdamW steps taken, where it differs from `global_step` (mixed
    /// precision's skipped steps count in `global_step` only, as the Trainer's do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer_steps: Option<u64>,
    /// Mixed precision's loss scale and its growth count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scaler: Option<optim::LossScaler>,
}

impl TrainerState {
    /// AdamW steps taken (the learning-rate schedule's position).
    pub fn adamw_steps(&self) -> u64 {
        self.optimizer_steps.unwrap_or(self.global_step)
    }
}

/// What a run reports while it goes.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrainEvent {
    /// The run is set up.
    Started {
        /// Optimizer steps in the run.
        total_steps: u64,
        /// Steps per epoch.
        steps_per_epoch: u64,
        /// First step (non-zero when resumed).
        start_step: u64,
        /// Train videos.
        train_videos: usize,
        /// Val videos.
        val_videos: usize,
        /// Unreadable files left out (each one reported by a `Skipped` event before this one).
        unreadable: usize,
        /// The epochs the run had before `--resume --epochs` changed them.
        extended_from_epochs: Option<usize>,
        /// Labels.
        labels: Vec<String>,
        /// The compute device.
        device: String,
        /// What the base checkpoint load used, dropped and initialised.
        load_report: Option<LoadReport>,
    },
    /// One optimizer step finished.
    Step {
        /// Steps done.
        step: u64,
        /// Total steps.
        total_steps: u64,
        /// Fractional epoch.
        epoch: f64,
        /// Loss of this step: on the CPU every step; on a GPU on log steps
        /// only (`logging_steps`), since reading it waits for the step to finish.
        loss: Option<f64>,
        /// Learning rate used.
        lr: f64,
        /// Gradient norm before clipping (read when the loss is).
        grad_norm: Option<f64>,
        /// Training clips per second over the run so far.
        clips_per_s: f64,
        /// Estimated seconds left (training steps only).
        eta_s: f64,
    },
    /// The mean loss of the last `logging_steps` steps (a metrics.jsonl line).
    Log {
        /// Steps done.
        step: u64,
        /// Fractional epoch.
        epoch: f64,
        /// Mean loss since the previous log.
        loss: f64,
        /// Learning rate of the last step.
        lr: f64,
        /// Gradient norm of the last step (infinite where mixed precision skipped it).
        grad_norm: f64,
        /// Mixed precision's loss scale after the last step.
        #[serde(skip_serializing_if = "Option::is_none")]
        loss_scale: Option<f64>,
    },
    /// An evaluation on the val split.
    Eval {
        /// Steps done.
        step: u64,
        /// Epochs done.
        epoch: u64,
        /// Accuracy.
        accuracy: f64,
        /// Mean cross-entropy.
        loss: f64,
        /// Videos evaluated.
        videos: usize,
    },
    /// A checkpoint was written.
    Checkpoint {
        /// Its folder.
        path: PathBuf,
    },
    /// A video could not be used and was skipped: a file of the dataset that
    /// cannot be read (reported before `Started`), or one whose clip failed to
    /// decode during an epoch.
    Skipped {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The run ended (finished or stopped).
    Done(TrainSummary),
}

/// The end of a run.
#[derive(Clone, Debug, Serialize)]
pub struct TrainSummary {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Steps done.
    pub steps: u64,
    /// Whether it was stopped before the end (resume with `--resume`).
    pub stopped: bool,
    /// Best val accuracy.
    pub best_accuracy: Option<f64>,
    /// The best model, in the transformers layout.
    pub best_dir: Option<PathBuf>,
    /// The best model on the test split, when there is one and the run finished.
    pub test: Option<EvalReport>,
    /// Seconds spent.
    pub seconds: f64,
}

/// Why a run could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A setting is wrong.
    #[error("{0}")]
    Config(String),
    /// The dataset cannot be used.
    #[error(transparent)]
    Dataset(#[from] crate::dataset::DatasetError),
    /// The model cannot be loaded or run.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The base checkpoint cannot be found or downloaded.
    #[error(transparent)]
    Hub(#[from] crate::hub::HubError),
    /// No device.
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    /// Evaluation failed.
    #[error("evaluation: {0}")]
    Eval(#[from] crate::eval::EvalError),
    /// Another process is training in the run folder.
    #[error(
        "{} is in use by another vidi train{}; wait for it to end or stop it",
        .run.display(),
        .pid.map(|p| format!(" (process {p})")).unwrap_or_default()
    )]
    InUse {
        /// The run folder.
        run: PathBuf,
        /// The process holding it, when its lock file says.
        pid: Option<u32>,
    },
    /// More of a split's files are unreadable than [`TrainConfig::max_unreadable`] allows.
    #[error("{}", unreadable_text(.data, .split, *.bad, *.total, *.max, .first))]
    TooManyUnreadable {
        /// The dataset folder.
        data: PathBuf,
        /// `train`, `val` or `test`.
        split: String,
        /// Unreadable files in the split.
        bad: usize,
        /// Files in the split, readable or not.
        total: usize,
        /// The share allowed.
        max: f64,
        /// The first few unreadable files.
        first: Vec<PathBuf>,
    },
    /// The run folder's disk has no room for what the run still writes.
    #[error(
        "{}: not enough free space: {} free, the run needs about {} ({}); {}",
        .dir.display(), crate::util::size_text(*.free), crate::util::size_text(*.need), .what, .hint
    )]
    NoSpace {
        /// The run folder.
        dir: PathBuf,
        /// Bytes free there.
        free: u64,
        /// Bytes needed.
        need: u64,
        /// What they are for.
        what: String,
        /// What to do.
        hint: String,
    },
    /// Writing the run folder failed (nothing before the failing write is lost).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The GPU was lost during the run (a driver reset, a GPU gone).
    #[error(
        "the GPU was lost ({reason}); {}",
        match .kept {
            Some((dir, step)) => format!("the last checkpoint, {} (step {step}), is kept: resuming goes on from it", dir.display()),
            None => "no checkpoint had been written yet".to_string(),
        }
    )]
    GpuLost {
        /// What the device said.
        reason: String,
        /// The last checkpoint in the run folder and its step, if any.
        kept: Option<(PathBuf, u64)>,
    },
}

/// A share as a percentage for people: 0.1 -> "10%", 2/13 -> "15.4%".
fn percent(share: f64) -> String {
    let s = format!("{:.1}", share * 100.0);
    format!("{}%", s.strip_suffix(".0").unwrap_or(&s))
}

fn unreadable_text(data: &Path, split: &str, bad: usize, total: usize, max: f64, first: &[PathBuf]) -> String {
    let mut names: Vec<String> =
        first.iter().map(|p| p.strip_prefix(data).unwrap_or(p).display().to_string()).collect();
    if bad > first.len() {
        names.push(format!("and {} more", bad - first.len()));
    }
    format!(
        "{}: {bad} of {total} {split} videos cannot be read ({}, more than the {} --max-unreadable allows): {}; \
         fix or remove them (vidi dataset inspect {} lists them all) or allow more with --max-unreadable",
        data.display(),
        percent(bad as f64 / total.max(1) as f64),
        percent(max),
        names.join(", "),
        data.display()
    )
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io { path: path.into(), source }
}

/// A stop request shared with the UI (Ctrl-C, the GUI's Stop button).
pub type CancelToken = Arc<AtomicBool>;

/// A split-layout dataset as a run uses it.
#[derive(Clone, Debug)]
pub struct DatasetItems {
    /// The labels (class folder names, sorted).
    pub labels: Vec<String>,
    /// The readable train videos (and segments).
    pub train: Vec<Example>,
    /// The readable val videos.
    pub val: Vec<Example>,
    /// The readable test videos.
    pub test: Vec<Example>,
    /// The files of the three splits that cannot be read, by path.
    pub unreadable: Vec<Unreadable>,
}

impl DatasetItems {
    /// The readable videos of `split`.
    pub fn split(&self, split: &str) -> &[Example] {
        match split {
            "train" => &self.train,
            "val" => &self.val,
            _ => &self.test,
        }
    }

    /// Refuses a split with more than `max` of its files unreadable.
    pub fn check_unreadable(&self, data: &Path, max: f64) -> Result<(), TrainError> {
        for split in crate::dataset::index::SPLITS {
            let bad: Vec<&Unreadable> = self.unreadable.iter().filter(|u| u.split.as_deref() == Some(split)).collect();
            let total = bad.len() + self.split(split).len();
            if !bad.is_empty() && bad.len() as f64 > max * total as f64 {
                return Err(TrainError::TooManyUnreadable {
                    data: data.to_path_buf(),
                    split: split.to_string(),
                    bad: bad.len(),
                    total,
                    max,
                    first: bad.iter().take(3).map(|u| u.path.clone()).collect(),
                });
            }
        }
        Ok(())
    }
}

/// The train, val and test items of a split-layout dataset, its labels and its unreadable files.
pub fn dataset_items(data: &Path, workers: usize) -> Result<DatasetItems, TrainError> {
    dataset_items_of(&DataSource::path(data), workers)
}

/// [`dataset_items`] of any source: a folder, lists, or an annotation file with splits.
pub fn dataset_items_of(src: &DataSource, workers: usize) -> Result<DatasetItems, TrainError> {
    let data = &src.path;
    let index = index_source(src, &IndexOptions { check_readable: true, threads: workers.max(1) }, &mut |_, _| {})?;
    if index.layout != Layout::Split {
        if index.format != "folder" {
            return Err(TrainError::Config(format!(
                "{}: no train and val samples (give the file a split column, or give --train and --val lists)",
                data.display()
            )));
        }
        return Err(TrainError::Config(format!(
            "{}: expected train/ and val/ folders (split a flat folder first: vidi dataset split {} --out SPLIT_DIR)",
            data.display(),
            data.display()
        )));
    }
    let items = |split: &str| -> Vec<Example> {
        index
            .samples
            .iter()
            .filter(|s| s.split.as_deref() == Some(split) && s.info.is_some())
            .map(Example::from)
            .collect()
    };
    Ok(DatasetItems {
        labels: index.classes.clone(),
        train: items("train"),
        val: items("val"),
        test: items("test"),
        unreadable: index.unreadable.clone(),
    })
}

/// The guide's train preset for a model: its frames, mean/std and size
/// (short side 256..320 and crop 224 at 224; scaled for other sizes).
pub fn train_preset(model: &VideoModel, cfg: &TrainConfig) -> TrainPreset {
    train_preset_for(&model.config, &model.processor, cfg)
}

/// [`train_preset`] from a checkpoint's configs alone (no weights loaded).
pub fn train_preset_for(
    config: &crate::model::ModelConfig,
    processor: &crate::dataset::transforms::ImageProcessor,
    cfg: &TrainConfig,
) -> TrainPreset {
    let size = config.image_size;
    let (lo, hi) = cfg.short_side.unwrap_or(((size * 256).div_ceil(224), (size * 320).div_ceil(224)));
    TrainPreset {
        num_frames: config.num_frames,
        sample_rate: cfg.sample_rate,
        fps: cfg.fps,
        mean: processor.image_mean,
        std: processor.image_std,
        min_short_side: lo,
        max_short_side: hi,
        crop: size,
        flip_p: cfg.flip_p,
    }
}

/// Mean cross-entropy of `logits` against `labels`, scaled by `scale`.
pub fn cross_entropy(logits: Tensor<2>, labels: &[usize], scale: f64) -> Tensor<1> {
    let [b, k] = logits.dims();
    let mut onehot = vec![0f32; b * k];
    for (i, &l) in labels.iter().enumerate() {
        onehot[i * k + l] = 1.0;
    }
    let device = logits.device();
    let onehot: Tensor<2> = Tensor::from_data(TensorData::new(onehot, [b, k]), &device);
    let logp = activation::log_softmax(logits, 1);
    (logp * onehot).sum().mul_scalar(-scale as f32)
}

/// Forward and backward of one micro-batch on an autodiff device: adds its
/// gradients to `acc` and returns its loss (mean cross-entropy x `scale` x
/// batch), left on the device off the CPU (a read waits for the step's work).
/// The config's dropouts and drop-path draw their masks from `seed`
/// ([`VideoModel::forward_train`]; a run derives it from its seed, the step
/// and the micro-batch, see [`step_seed`]). A mixed-precision accumulator
/// ([`GradAccumulator::new`] with a scale) runs the forward pass under autocast and the
/// backward pass from the loss times its loss scale; the loss returned is the unscaled one.
pub fn accumulate(
    model: &VideoModel,
    pixel_values: Vec<f32>,
    shape: [usize; 5],
    labels: &[usize],
    scale: f64,
    seed: u64,
    acc: &mut GradAccumulator,
) -> Result<Scalar, ModelError> {
    let per = model.clips_per_pass();
    if shape[0] > per {
        // Off the CPU, a large micro-batch runs in pieces: the loss is a sum over
        // clips, so the pieces' gradients add up to the whole's.
        let clip: usize = shape[1..].iter().product();
        let mut loss: Option<Scalar> = None;
        for (i, (piece, labels)) in pixel_values.chunks(per * clip).zip(labels.chunks(per)).enumerate() {
            let piece_shape = [labels.len(), shape[1], shape[2], shape[3], shape[4]];
            let piece_seed = crate::backend::ops::mix(seed, i as u64);
            loss = Some(accumulate(model, piece.to_vec(), piece_shape, labels, scale, piece_seed, acc)?.added_to(loss));
        }
        return Ok(loss.unwrap_or(Scalar::Host(0.0)));
    }
    let x: Tensor<5> = Tensor::from_data(TensorData::new(pixel_values, shape), &model.device);
    let (loss, value) = micro_loss(model, x, labels, scale, seed, acc.loss_scale())?;
    let grads = loss.backward();
    acc.add(&model.net, &grads);
    Ok(value)
}

/// The forward pass of one micro-batch `x` and its loss: (what the backward
/// pass starts from, the loss). In mixed precision (`loss_scale`), the
/// forward pass runs under autocast and the first is the loss times the scale.
pub fn micro_loss(
    model: &VideoModel,
    x: Tensor<5>,
    labels: &[usize],
    scale: f64,
    seed: u64,
    loss_scale: Option<f64>,
) -> Result<(Tensor<1>, Scalar), ModelError> {
    let logits = {
        let _autocast = crate::backend::ops::autocast(loss_scale.is_some());
        model.forward_train(x, seed)?
    };
    let loss = cross_entropy(logits, labels, scale);
    let value = Scalar::of(loss.clone().inner());
    Ok(match loss_scale {
        Some(s) => (loss.mul_scalar(s as f32), value),
        None => (loss, value),
    })
}

/// The dropout seed of micro-batch `micro` of optimizer step `step` (counted
/// from 0 over the whole run) of a run seeded `seed`: a resumed run, which
/// goes on from the step it stopped at, draws the masks the uninterrupted one drew.
pub fn step_seed(seed: u64, step: u64, micro: usize) -> u64 {
    use crate::backend::ops::mix;
    mix(mix(mix(seed, 0x6472_6f70), step), micro as u64)
}

/// One optimizer step on the model's network with the accumulated gradients.
pub fn apply_step(model: VideoModel, opt: &mut AdamW, acc: GradAccumulator, lr: f64) -> (VideoModel, StepInfo) {
    let VideoModel { config, processor, net, labels, device } = model;
    let (net, info) = opt.step(net, acc, lr);
    (VideoModel { config, processor, net, labels, device }, info)
}

/// The same model on the plain (non-autodiff) device, for evaluation and export.
pub fn inference_copy(model: &VideoModel) -> VideoModel {
    VideoModel {
        config: model.config.clone(),
        processor: model.processor.clone(),
        net: model.net.valid(),
        labels: model.labels.clone(),
        device: model.device.clone().inner(),
    }
}

/// Starts a run in `out` (which must not hold one) or, with `resume`, goes
/// on with the run in `out` from its latest checkpoint.
pub fn train(
    cfg: Option<&TrainConfig>,
    out: &Path,
    events: &SyncSender<TrainEvent>,
    cancel: &AtomicBool,
) -> Result<TrainSummary, TrainError> {
    train_on(cfg, out, events, cancel, None)
}

/// Goes on with the run in `out` from its latest checkpoint, with `opts`
/// changing its settings ([`train`] with no `cfg` changes none).
pub fn resume(
    out: &Path,
    opts: &ResumeOptions,
    events: &SyncSender<TrainEvent>,
    cancel: &AtomicBool,
) -> Result<TrainSummary, TrainError> {
    resume_on(out, opts, events, cancel, None)
}
