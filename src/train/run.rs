//! One run of the Trainer, in its phases: [`settings`] (a new run or the one
//! to resume), [`Plan::new`] (validation: settings, data, step counts),
//! [`Run::start`] (a new model or the latest checkpoint), [`Run::epochs`] (the
//! training loop, with an evaluation and a checkpoint after each epoch) and
//! [`Run::finish`] (a stopped run's checkpoint, the test evaluation, the summary),
//! all under the run folder's [`RunLock`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::Instant;

use super::lock::RunLock;
use super::optim::{self, AdamW, GradAccumulator};
use super::{
    accumulate, apply_step, dataset_items, inference_copy, io_err, train_preset, TrainConfig, TrainError, TrainEvent,
    TrainSummary, TrainerState,
};
use crate::backend;
use crate::dataset::loader::{Item, Loader, LoaderOptions};
use crate::dataset::presets::Preset;
use crate::eval::{evaluate, EvalOptions, EvalReport};
use crate::model::{LoadOptions, LoadReport, VideoModel};

/// [`super::train`] on a device the caller already has (the app's GPU, shared with its
/// window) instead of the one the configuration's `device` picks.
pub fn train_on(
    cfg: Option<&TrainConfig>,
    out: &Path,
    events: &SyncSender<TrainEvent>,
    cancel: &AtomicBool,
    compute: Option<&backend::Compute>,
) -> Result<TrainSummary, TrainError> {
    let t0 = Instant::now();
    // Before anything in `out` is read: the run's settings and checkpoints are this process's alone.
    let _lock = RunLock::acquire(out, cfg.is_some())?;
    let (cfg, resume_from) = settings(cfg, out)?;
    let plan = Plan::new(cfg)?;
    let compute = match compute {
        Some(c) => c.clone(),
        None => backend::select(backend::choice_from(Some(plan.cfg.device))?)?,
    };
    let (device, is_gpu) = (compute.device.clone(), compute.is_gpu);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (run, model, opt, state) = Run::start(plan, out, resume_from, compute, events, cancel)?;
        let (model, opt, state, stopped) = run.epochs(model, opt, state)?;
        run.finish(model, opt, state, stopped, t0)
    }));
    // A lost GPU fails the first read of a result after it, as an error or a
    // panic deep in the backend: the device, asked, says it is lost.
    let lost = || if is_gpu { device.sync().err().map(|e| e.to_string()) } else { None };
    let gpu_lost = |reason: String| TrainError::GpuLost {
        reason: reason.lines().next().unwrap_or_default().to_string(),
        kept: latest_checkpoint(out).map(|(dir, state)| (dir, state.global_step)),
    };
    match outcome {
        Ok(Err(e)) => Err(lost().map_or(e, gpu_lost)),
        Ok(done) => done,
        Err(panic) => match lost() {
            Some(reason) => Err(gpu_lost(reason)),
            None => std::panic::resume_unwind(panic),
        },
    }
}

/// The settings of the run in `out`: `cfg` for a new one (`out` must not hold
/// a run), or the run's own `config.json` and its latest checkpoint.
fn settings(
    cfg: Option<&TrainConfig>,
    out: &Path,
) -> Result<(TrainConfig, Option<(PathBuf, TrainerState)>), TrainError> {
    match cfg {
        Some(c) => {
            if out.join("config.json").exists() || latest_checkpoint(out).is_some() {
                return Err(TrainError::Config(format!(
                    "{} already holds a run: continue it with `vidi train --resume {}` or pick another --out",
                    out.display(),
                    out.display()
                )));
            }
            Ok((c.clone(), None))
        }
        None => {
            let config_path = out.join("config.json");
            let raw = std::fs::read_to_string(&config_path)
                .map_err(|e| TrainError::Config(format!("{}: not a run folder ({e})", out.display())))?;
            let c: TrainConfig = serde_json::from_str(&raw)
                .map_err(|e| TrainError::Config(format!("{}: {e}", config_path.display())))?;
            Ok((c, latest_checkpoint(out)))
        }
    }
}

/// A run's checked settings, data and step counts.
struct Plan {
    cfg: TrainConfig,
    labels: Vec<String>,
    train_items: Vec<Item>,
    val_items: Vec<Item>,
    test_items: Vec<Item>,
    /// Clips per optimizer step (batch size x gradient accumulation).
    effective: usize,
    steps_per_epoch: u64,
    total_steps: u64,
    warmup: u64,
}

impl Plan {
    /// Checks the settings and the data, and counts the steps.
    fn new(cfg: TrainConfig) -> Result<Plan, TrainError> {
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
        Ok(Plan { cfg, labels, train_items, val_items, test_items, effective, steps_per_epoch, total_steps, warmup })
    }
}

/// A run under way: its plan, where it writes, and what it reports to.
struct Run<'a> {
    plan: Plan,
    out: &'a Path,
    metrics: Metrics,
    events: &'a SyncSender<TrainEvent>,
    cancel: &'a AtomicBool,
    compute: backend::Compute,
    /// The checkpoint resumed from.
    resume_from: Option<(PathBuf, TrainerState)>,
    preset: Preset,
    eval_opts: EvalOptions,
}

impl<'a> Run<'a> {
    /// A new model from the base checkpoint (writing the run's `config.json`),
    /// or the latest checkpoint's weights, moments and position; then the
    /// `Started` event. Returns the run and the model (on the autodiff
    /// device), optimizer and position to train from.
    fn start(
        plan: Plan,
        out: &'a Path,
        resume_from: Option<(PathBuf, TrainerState)>,
        compute: backend::Compute,
        events: &'a SyncSender<TrainEvent>,
        cancel: &'a AtomicBool,
    ) -> Result<(Run<'a>, VideoModel, AdamW, TrainerState), TrainError> {
        let ad = compute.device.clone().autodiff();
        std::fs::create_dir_all(out).map_err(io_err(out))?;
        let metrics = Metrics { path: out.join("metrics.jsonl") };
        let cfg = &plan.cfg;
        let (model, opt, state, load_report): (_, _, _, Option<LoadReport>) = match &resume_from {
            Some((dir, state)) => {
                let (m, _) = VideoModel::load(dir, &LoadOptions::default(), &ad)?;
                if m.labels != plan.labels {
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
                let opts = LoadOptions { labels: Some(plan.labels.clone()), seed: cfg.seed };
                let (m, report) = VideoModel::load(&dir, &opts, &ad)?;
                let json = serde_json::to_string_pretty(cfg).unwrap_or_default();
                let config_path = out.join("config.json");
                crate::util::write_atomic(&config_path, json.as_bytes()).map_err(io_err(&config_path))?;
                let _ = std::fs::remove_file(&metrics.path);
                (m, AdamW::new(cfg.adamw.clone()), TrainerState::default(), Some(report))
            }
        };
        let preset = Preset::Train(train_preset(&model, cfg));
        let eval_opts = EvalOptions {
            clips: 1,
            crops: 1,
            sample_rate: cfg.sample_rate,
            fps: cfg.fps,
            batch_size: cfg.batch_size,
            workers: cfg.workers,
        };
        let _ = events.send(TrainEvent::Started {
            total_steps: plan.total_steps,
            steps_per_epoch: plan.steps_per_epoch,
            start_step: state.global_step,
            train_videos: plan.train_items.len(),
            val_videos: plan.val_items.len(),
            labels: plan.labels.clone(),
            device: compute.description.clone(),
            load_report,
        });
        let run = Run { plan, out, metrics, events, cancel, compute, resume_from, preset, eval_opts };
        Ok((run, model, opt, state))
    }

    fn best_dir(&self) -> PathBuf {
        self.out.join("best")
    }

    /// The training loop: steps until the schedule ends or a stop is asked
    /// for, each epoch closed by [`Run::end_epoch`]. Returns whether it was stopped.
    fn epochs(
        &self,
        mut model: VideoModel,
        mut opt: AdamW,
        mut state: TrainerState,
    ) -> Result<(VideoModel, AdamW, TrainerState, bool), TrainError> {
        let (p, cfg) = (&self.plan, &self.plan.cfg);
        let (mut log_loss, mut log_n) = (0f64, 0u64);
        let (mut clips_done, t_train) = (0usize, Instant::now());
        let start_step = state.global_step;
        while state.global_step < p.total_steps {
            let loader = Loader::new(
                p.train_items.clone(),
                self.preset.clone(),
                &LoaderOptions {
                    batch_size: cfg.batch_size,
                    workers: cfg.workers,
                    prefetch: 2 * cfg.grad_accum,
                    shuffle: true,
                    seed: cfg.seed,
                    epoch: state.epoch,
                    start: state.step_in_epoch as usize * p.effective,
                },
            );
            let mut loader = loader.peekable();
            while state.step_in_epoch < p.steps_per_epoch && state.global_step < p.total_steps {
                if self.cancel.load(Ordering::SeqCst) {
                    return Ok((model, opt, state, true));
                }
                let mut acc = GradAccumulator::default();
                let (mut step_loss, mut step_clips) = (0f64, 0usize);
                for _ in 0..cfg.grad_accum {
                    let Some(batch) = loader.next() else { break };
                    for (path, reason) in &batch.skipped {
                        let _ = self.events.send(TrainEvent::Skipped { path: path.clone(), reason: reason.clone() });
                    }
                    if batch.labels.is_empty() {
                        continue;
                    }
                    let scale = 1.0 / p.effective as f64;
                    step_loss += accumulate(&model, batch.pixel_values, batch.shape, &batch.labels, scale, &mut acc)?;
                    step_clips += batch.labels.len();
                }
                if acc.is_empty() {
                    // The epoch ran out of readable videos.
                    break;
                }
                let lr = optim::linear_schedule(cfg.lr, state.global_step, p.warmup, p.total_steps);
                let info;
                (model, info) = apply_step(model, &mut opt, acc, lr);
                state.global_step += 1;
                state.step_in_epoch += 1;
                clips_done += step_clips;
                let elapsed = t_train.elapsed().as_secs_f64();
                let done_here = (state.global_step - start_step) as f64;
                let epoch_f = state.epoch as f64 + state.step_in_epoch as f64 / p.steps_per_epoch as f64;
                let _ = self.events.send(TrainEvent::Step {
                    step: state.global_step,
                    total_steps: p.total_steps,
                    epoch: epoch_f,
                    loss: step_loss,
                    lr,
                    grad_norm: info.grad_norm,
                    clips_per_s: clips_done as f64 / elapsed.max(1e-9),
                    eta_s: elapsed / done_here * (p.total_steps - state.global_step) as f64,
                });
                log_loss += step_loss;
                log_n += 1;
                if state.global_step.is_multiple_of(cfg.logging_steps.max(1)) {
                    let loss = log_loss / log_n as f64;
                    self.metrics.append(&serde_json::json!({
                        "step": state.global_step, "epoch": epoch_f, "loss": loss, "learning_rate": lr,
                        "grad_norm": info.grad_norm,
                    }))?;
                    let _ = self.events.send(TrainEvent::Log {
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
            self.end_epoch(&model, &opt, &mut state)?;
        }
        Ok((model, opt, state, false))
    }

    /// The end of an epoch (or of the run): evaluate on val, keep the best
    /// model, and write the epoch's checkpoint.
    fn end_epoch(&self, model: &VideoModel, opt: &AdamW, state: &mut TrainerState) -> Result<(), TrainError> {
        let epoch_done = state.epoch + 1;
        let eval_model = inference_copy(model);
        let best_dir = self.best_dir();
        if !self.plan.val_items.is_empty() {
            // A stop request waits for this short evaluation, so the epoch's checkpoint is complete.
            let r =
                evaluate(&eval_model, &self.plan.val_items, &self.eval_opts, &mut |_, _| {}, &AtomicBool::new(false))?;
            self.metrics.append(&serde_json::json!({
                "step": state.global_step, "epoch": epoch_done, "eval_accuracy": r.accuracy,
                "eval_loss": r.loss, "eval_top5_accuracy": r.top5_accuracy, "eval_videos": r.videos,
            }))?;
            let _ = self.events.send(TrainEvent::Eval {
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
        let ckpt = self.out.join(format!("checkpoint-epoch-{epoch_done}"));
        save_checkpoint(&ckpt, &eval_model, opt, state)?;
        let _ = self.events.send(TrainEvent::Checkpoint { path: ckpt });
        Ok(())
    }

    /// A stopped run's checkpoint (when it got past the one it resumed from),
    /// the best model's test evaluation (a run that was not stopped), and the summary.
    fn finish(
        &self,
        model: VideoModel,
        opt: AdamW,
        state: TrainerState,
        stopped: bool,
        t0: Instant,
    ) -> Result<TrainSummary, TrainError> {
        if stopped && state.global_step > self.resume_from.as_ref().map_or(0, |r| r.1.global_step) {
            let ckpt = self.out.join(format!("checkpoint-step-{}", state.global_step));
            save_checkpoint(&ckpt, &inference_copy(&model), &opt, &state)?;
            let _ = self.events.send(TrainEvent::Checkpoint { path: ckpt });
        }
        drop(model);
        let best_dir = self.best_dir();
        let test = if !stopped && !self.plan.test_items.is_empty() && best_dir.exists() {
            Some(self.test(&best_dir, state.global_step)?)
        } else {
            None
        };
        let summary = TrainSummary {
            run_dir: self.out.to_path_buf(),
            steps: state.global_step,
            stopped,
            best_accuracy: state.best_accuracy,
            best_dir: best_dir.exists().then(|| best_dir.clone()),
            test,
            seconds: t0.elapsed().as_secs_f64(),
        };
        let _ = self.events.send(TrainEvent::Done(summary.clone()));
        Ok(summary)
    }

    /// The best model evaluated on the test split: a metrics line and `test-eval/`.
    fn test(&self, best_dir: &Path, step: u64) -> Result<EvalReport, TrainError> {
        let (best, _) = VideoModel::load(best_dir, &LoadOptions::default(), &self.compute.device)?;
        let r = evaluate(&best, &self.plan.test_items, &self.eval_opts, &mut |_, _| {}, self.cancel)?;
        self.metrics.append(&serde_json::json!({
            "step": step, "test_accuracy": r.accuracy, "test_top5_accuracy": r.top5_accuracy,
            "test_loss": r.loss, "test_videos": r.videos,
        }))?;
        let dir = self.out.join("test-eval");
        crate::eval::write_report(&r, &dir).map_err(io_err(&dir))?;
        Ok(r)
    }
}

/// The run folder's checkpoint with the most steps, and where it stands.
pub fn latest_checkpoint(run: &Path) -> Option<(PathBuf, TrainerState)> {
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

fn save_checkpoint(dir: &Path, model: &VideoModel, opt: &AdamW, state: &TrainerState) -> Result<(), TrainError> {
    write_dir_atomically(dir, |d| {
        model.export(d)?;
        opt.save(&d.join("optimizer.safetensors"))?;
        let json = serde_json::to_string_pretty(state).unwrap_or_default();
        let p = d.join("trainer_state.json");
        crate::util::write_atomic(&p, json.as_bytes()).map_err(io_err(&p))
    })
}
