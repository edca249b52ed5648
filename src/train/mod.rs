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
//!   (`report.json`, `confusion.csv`, `confusion.png`).
//!
//! Every random choice derives from (seed, epoch, position), and a checkpoint
//! holds the weights and AdamW moments exactly, so a resumed run repeats the
//! uninterrupted one.

pub mod optim;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{activation, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::backend::{self, DeviceChoice};
use crate::dataset::loader::{Item, Loader, LoaderOptions};
use crate::dataset::presets::{Preset, TrainPreset};
use crate::dataset::{index_folder, IndexOptions, Layout};
use crate::eval::{evaluate, EvalOptions, EvalReport};
use crate::model::{LoadOptions, LoadReport, ModelError, VideoModel};
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
            workers: 2,
            sample_rate: 4,
            fps: 30.0,
            short_side: None,
            flip_p: 0.5,
            device: DeviceChoice::Auto,
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
        /// Loss of this step.
        loss: f64,
        /// Learning rate used.
        lr: f64,
        /// Gradient norm before clipping.
        grad_norm: f64,
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
        /// Gradient norm of the last step.
        grad_norm: f64,
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
    /// A video could not be used and was skipped.
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
    /// Writing the run folder failed (nothing before the failing write is lost).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io { path: path.into(), source }
}

/// A stop request shared with the UI (Ctrl-C, the GUI's Stop button).
pub type CancelToken = Arc<AtomicBool>;

/// The train and val items of a split-layout dataset, and its labels.
pub fn dataset_items(
    data: &Path,
    workers: usize,
) -> Result<(Vec<String>, Vec<Item>, Vec<Item>, Vec<Item>), TrainError> {
    let index = index_folder(data, &IndexOptions { check_readable: true, threads: workers.max(1) })?;
    if index.layout != Layout::Split {
        return Err(TrainError::Config(format!(
            "{}: expected train/ and val/ folders (split a flat folder first: vidi dataset split {} --out SPLIT_DIR)",
            data.display(),
            data.display()
        )));
    }
    let items = |split: &str| -> Vec<Item> {
        index.samples.iter().filter(|s| s.split.as_deref() == Some(split) && s.info.is_some()).map(Item::from).collect()
    };
    Ok((index.classes.clone(), items("train"), items("val"), items("test")))
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
/// gradients to `acc` and returns its loss (mean cross-entropy x `scale` x batch).
pub fn accumulate(
    model: &VideoModel,
    pixel_values: Vec<f32>,
    shape: [usize; 5],
    labels: &[usize],
    scale: f64,
    acc: &mut GradAccumulator,
) -> Result<f64, ModelError> {
    let x: Tensor<5> = Tensor::from_data(TensorData::new(pixel_values, shape), &model.device);
    let logits = model.forward(x)?;
    let loss = cross_entropy(logits, labels, scale);
    let value = loss.clone().into_scalar::<f32>() as f64;
    let grads = loss.backward();
    acc.add(&model.net, &grads);
    Ok(value)
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

fn latest_checkpoint(run: &Path) -> Option<(PathBuf, TrainerState)> {
    let mut best: Option<(PathBuf, TrainerState)> = None;
    for e in std::fs::read_dir(run).ok()?.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with("checkpoint-") || name.ends_with(".tmp") {
            continue;
        }
        let Ok(raw) = std::fs::read_to_string(p.join("trainer_state.json")) else { continue };
        let Ok(state) = serde_json::from_str::<TrainerState>(&raw) else { continue };
        if best.as_ref().is_none_or(|(_, s)| state.global_step > s.global_step) {
            best = Some((p, state));
        }
    }
    best
}

/// Writes a folder aside (`NAME.tmp`) and renames it into place, replacing an older one.
fn write_dir_atomically(dir: &Path, fill: impl FnOnce(&Path) -> Result<(), TrainError>) -> Result<(), TrainError> {
    let tmp = dir.with_extension("tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
    fill(&tmp)?;
    let old = dir.with_extension("old");
    if dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
        }
        std::fs::rename(dir, &old).map_err(io_err(dir))?;
    }
    std::fs::rename(&tmp, dir).map_err(io_err(dir))?;
    if old.exists() {
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(())
}

struct Metrics {
    path: PathBuf,
}

impl Metrics {
    fn append(&self, line: &serde_json::Value) -> Result<(), TrainError> {
        let mut f =
            std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(io_err(&self.path))?;
        writeln!(f, "{line}").map_err(io_err(&self.path))
    }

    /// Keeps only the lines up to `step` (resuming repeats what came after).
    fn truncate_after(&self, step: u64) -> Result<(), TrainError> {
        let Ok(raw) = std::fs::read_to_string(&self.path) else { return Ok(()) };
        let kept: String = raw
            .lines()
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                    .is_some_and(|s| s <= step)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        crate::util::write_atomic(&self.path, kept.as_bytes()).map_err(io_err(&self.path))
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

/// [`train`] on a device the caller already has (the app's GPU, shared with its
/// window) instead of the one the configuration's `device` picks.
pub fn train_on(
    cfg: Option<&TrainConfig>,
    out: &Path,
    events: &SyncSender<TrainEvent>,
    cancel: &AtomicBool,
    compute: Option<&backend::Compute>,
) -> Result<TrainSummary, TrainError> {
    let t0 = Instant::now();
    let config_path = out.join("config.json");
    let (cfg, resume_from) = match cfg {
        Some(c) => {
            if out.join("config.json").exists() || latest_checkpoint(out).is_some() {
                return Err(TrainError::Config(format!(
                    "{} already holds a run: continue it with `vidi train --resume {}` or pick another --out",
                    out.display(),
                    out.display()
                )));
            }
            (c.clone(), None)
        }
        None => {
            let raw = std::fs::read_to_string(&config_path)
                .map_err(|e| TrainError::Config(format!("{}: not a run folder ({e})", out.display())))?;
            let c: TrainConfig = serde_json::from_str(&raw)
                .map_err(|e| TrainError::Config(format!("{}: {e}", config_path.display())))?;
            (c, latest_checkpoint(out))
        }
    };
    if cfg.batch_size == 0 || cfg.grad_accum == 0 || cfg.epochs == 0 {
        return Err(TrainError::Config("batch size, gradient accumulation and epochs must be at least 1".into()));
    }
    if !(cfg.lr > 0.0 && cfg.lr.is_finite()) {
        return Err(TrainError::Config(format!("learning rate must be positive, got {}", cfg.lr)));
    }
    let (labels, train_items, val_items, test_items) = dataset_items(&cfg.data, cfg.workers)?;
    if train_items.is_empty() {
        return Err(TrainError::Config(format!("{}: no readable videos in train/", cfg.data.display())));
    }
    let effective = cfg.batch_size * cfg.grad_accum;
    let steps_per_epoch = (train_items.len() / effective) as u64;
    if steps_per_epoch == 0 {
        return Err(TrainError::Config(format!(
            "{} train videos is fewer than one batch of {effective} (batch size x gradient accumulation)",
            train_items.len()
        )));
    }
    let total_steps = cfg.max_steps.unwrap_or(steps_per_epoch * cfg.epochs as u64);
    let warmup = optim::warmup_steps(total_steps, cfg.warmup_ratio);

    let compute = match compute {
        Some(c) => c.clone(),
        None => backend::select(backend::choice_from(Some(cfg.device))?)?,
    };
    let ad = compute.device.clone().autodiff();
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    let metrics = Metrics { path: out.join("metrics.jsonl") };

    let (mut model, mut opt, mut state, load_report) = match &resume_from {
        Some((dir, state)) => {
            let (m, _) = VideoModel::load(dir, &LoadOptions::default(), &ad)?;
            if m.labels != labels {
                return Err(TrainError::Config(format!(
                    "{}: the checkpoint's labels differ from the dataset's class folders",
                    dir.display()
                )));
            }
            let opt = AdamW::load(cfg.adamw.clone(), state.global_step, &dir.join("optimizer.safetensors"), &ad)?;
            metrics.truncate_after(state.global_step)?;
            (m, opt, state.clone(), None)
        }
        None => {
            let dir = crate::hub::resolve_model(&cfg.model, cfg.revision.as_deref(), None)?;
            let (m, report) =
                VideoModel::load(&dir, &LoadOptions { labels: Some(labels.clone()), seed: cfg.seed }, &ad)?;
            let json = serde_json::to_string_pretty(&cfg).unwrap_or_default();
            crate::util::write_atomic(&config_path, json.as_bytes()).map_err(io_err(&config_path))?;
            let _ = std::fs::remove_file(&metrics.path);
            (m, AdamW::new(cfg.adamw.clone()), TrainerState::default(), Some(report))
        }
    };
    let preset = Preset::Train(train_preset(&model, &cfg));
    let eval_opts = EvalOptions {
        clips: 1,
        crops: 1,
        sample_rate: cfg.sample_rate,
        fps: cfg.fps,
        batch_size: cfg.batch_size,
        workers: cfg.workers,
    };
    let _ = events.send(TrainEvent::Started {
        total_steps,
        steps_per_epoch,
        start_step: state.global_step,
        train_videos: train_items.len(),
        val_videos: val_items.len(),
        labels: labels.clone(),
        device: compute.description.clone(),
        load_report,
    });

    let best_dir = out.join("best");
    let (mut log_loss, mut log_n) = (0f64, 0u64);
    let (mut clips_done, t_train) = (0usize, Instant::now());
    let start_step = state.global_step;
    let mut stopped = false;
    'epochs: while state.global_step < total_steps {
        let loader = Loader::new(
            train_items.clone(),
            preset.clone(),
            &LoaderOptions {
                batch_size: cfg.batch_size,
                workers: cfg.workers,
                prefetch: 2 * cfg.grad_accum,
                shuffle: true,
                seed: cfg.seed,
                epoch: state.epoch,
                start: state.step_in_epoch as usize * effective,
            },
        );
        let mut loader = loader.peekable();
        while state.step_in_epoch < steps_per_epoch && state.global_step < total_steps {
            if cancel.load(Ordering::SeqCst) {
                stopped = true;
                break 'epochs;
            }
            let mut acc = GradAccumulator::default();
            let (mut step_loss, mut step_clips) = (0f64, 0usize);
            for _ in 0..cfg.grad_accum {
                let Some(batch) = loader.next() else { break };
                for (path, reason) in &batch.skipped {
                    let _ = events.send(TrainEvent::Skipped { path: path.clone(), reason: reason.clone() });
                }
                if batch.labels.is_empty() {
                    continue;
                }
                step_loss += accumulate(
                    &model,
                    batch.pixel_values,
                    batch.shape,
                    &batch.labels,
                    1.0 / effective as f64,
                    &mut acc,
                )?;
                step_clips += batch.labels.len();
            }
            if acc.is_empty() {
                // The epoch ran out of readable videos.
                break;
            }
            let lr = optim::linear_schedule(cfg.lr, state.global_step, warmup, total_steps);
            let info;
            (model, info) = apply_step(model, &mut opt, acc, lr);
            state.global_step += 1;
            state.step_in_epoch += 1;
            clips_done += step_clips;
            let elapsed = t_train.elapsed().as_secs_f64();
            let done_here = (state.global_step - start_step) as f64;
            let epoch_f = state.epoch as f64 + state.step_in_epoch as f64 / steps_per_epoch as f64;
            let _ = events.send(TrainEvent::Step {
                step: state.global_step,
                total_steps,
                epoch: epoch_f,
                loss: step_loss,
                lr,
                grad_norm: info.grad_norm,
                clips_per_s: clips_done as f64 / elapsed.max(1e-9),
                eta_s: elapsed / done_here * (total_steps - state.global_step) as f64,
            });
            log_loss += step_loss;
            log_n += 1;
            if state.global_step % cfg.logging_steps.max(1) == 0 {
                let loss = log_loss / log_n as f64;
                metrics.append(&serde_json::json!({
                    "step": state.global_step, "epoch": epoch_f, "loss": loss, "learning_rate": lr,
                    "grad_norm": info.grad_norm,
                }))?;
                let _ = events.send(TrainEvent::Log {
                    step: state.global_step,
                    epoch: epoch_f,
                    loss,
                    lr,
                    grad_norm: info.grad_norm,
                });
                (log_loss, log_n) = (0.0, 0);
            }
        }
        drop(loader);
        if stopped {
            break;
        }
        // End of an epoch (or of the run): evaluate, keep the best, checkpoint.
        let epoch_done = state.epoch + 1;
        let eval_model = inference_copy(&model);
        if !val_items.is_empty() {
            // A stop request waits for this short evaluation, so the epoch's checkpoint is complete.
            let r = evaluate(&eval_model, &val_items, &eval_opts, &mut |_, _| {}, &AtomicBool::new(false))?;
            metrics.append(&serde_json::json!({
                "step": state.global_step, "epoch": epoch_done, "eval_accuracy": r.accuracy,
                "eval_loss": r.loss, "eval_top5_accuracy": r.top5_accuracy, "eval_videos": r.videos,
            }))?;
            let _ = events.send(TrainEvent::Eval {
                step: state.global_step,
                epoch: epoch_done,
                accuracy: r.accuracy,
                loss: r.loss,
                videos: r.videos,
            });
            if state.best_accuracy.is_none_or(|b| r.accuracy > b) {
                state.best_accuracy = Some(r.accuracy);
                state.best_step = Some(state.global_step);
                write_dir_atomically(&best_dir, |d| Ok(eval_model.export(d)?))?;
            }
        } else {
            // No val split: the latest model is the one kept.
            state.best_step = Some(state.global_step);
            write_dir_atomically(&best_dir, |d| Ok(eval_model.export(d)?))?;
        }
        state.epoch = epoch_done;
        state.step_in_epoch = 0;
        let ckpt = out.join(format!("checkpoint-epoch-{epoch_done}"));
        save_checkpoint(&ckpt, &eval_model, &opt, &state)?;
        let _ = events.send(TrainEvent::Checkpoint { path: ckpt });
    }
    if stopped {
        let ckpt = out.join(format!("checkpoint-step-{}", state.global_step));
        if state.global_step > resume_from.as_ref().map_or(0, |r| r.1.global_step) {
            save_checkpoint(&ckpt, &inference_copy(&model), &opt, &state)?;
            let _ = events.send(TrainEvent::Checkpoint { path: ckpt });
        }
    }
    let test = if !stopped && !test_items.is_empty() && best_dir.exists() {
        let (best, _) = VideoModel::load(&best_dir, &LoadOptions::default(), &compute.device)?;
        let r = evaluate(&best, &test_items, &eval_opts, &mut |_, _| {}, cancel)?;
        metrics.append(&serde_json::json!({
            "step": state.global_step, "test_accuracy": r.accuracy, "test_top5_accuracy": r.top5_accuracy,
            "test_loss": r.loss, "test_videos": r.videos,
        }))?;
        let dir = out.join("test-eval");
        crate::eval::write_report(&r, &dir).map_err(io_err(&dir))?;
        Some(r)
    } else {
        None
    };
    let summary = TrainSummary {
        run_dir: out.to_path_buf(),
        steps: state.global_step,
        stopped,
        best_accuracy: state.best_accuracy,
        best_dir: best_dir.exists().then(|| best_dir.clone()),
        test,
        seconds: t0.elapsed().as_secs_f64(),
    };
    let _ = events.send(TrainEvent::Done(summary.clone()));
    Ok(summary)
}

fn save_checkpoint(dir: &Path, model: &VideoModel, opt: &AdamW, state: &TrainerState) -> Result<(), TrainError> {
    write_dir_atomically(dir, |d| {
        model.export(d)?;
        opt.save(&d.join("optimizer.safetensors"))?;
        let json = serde_json::to_string_pretty(state).unwrap_or_default();
        let p = d.join("trainer_state.json");
        crate::util::write_atomic(&p, json.as_bytes()).map_err(io_err(&p))
    })
}
