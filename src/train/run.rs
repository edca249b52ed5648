//! One run of the Trainer, in its phases: [`settings`] (a new run or the one
//! to resume), [`Plan::new`] (validation: settings, data, step counts),
//! [`Run::start`] (a new model or the latest checkpoint), [`Run::epochs`] (the
//! training loop, with an evaluation and a checkpoint after each epoch) and
//! [`Run::finish`] (a stopped run's checkpoint, the test evaluation, the summary),
//! all under the run folder's [`RunLock`].

use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::Instant;

use burn::module::Module;

use super::lock::RunLock;
use super::optim::{self, AdamW, GradAccumulator};
use super::{
    accumulate, apply_step, dataset_items_of, inference_copy, io_err, space, step_seed, train_preset, ResumeOptions,
    TrainConfig, TrainError, TrainEvent, TrainSummary, TrainerState,
};
use crate::backend::{self, Scalar};
use crate::dataset::loader::{balanced, Example, Loader, LoaderOptions};
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
    run(cfg, &ResumeOptions::default(), out, events, cancel, compute)
}

/// [`super::resume`] on a device the caller already has (see [`train_on`]).
pub fn resume_on(
    out: &Path,
    opts: &ResumeOptions,
    events: &SyncSender<TrainEvent>,
    cancel: &AtomicBool,
    compute: Option<&backend::Compute>,
) -> Result<TrainSummary, TrainError> {
    run(None, opts, out, events, cancel, compute)
}

fn run(
    cfg: Option<&TrainConfig>,
    opts: &ResumeOptions,
    out: &Path,
    events: &SyncSender<TrainEvent>,
    cancel: &AtomicBool,
    compute: Option<&backend::Compute>,
) -> Result<TrainSummary, TrainError> {
    let t0 = Instant::now();
    // A new run that cannot compute as it asks is refused before its folder is made.
    let chosen = match cfg {
        Some(c) => Some(computing(c, compute)?),
        None => None,
    };
    // Before anything in `out` is read: the run's settings and checkpoints are this process's alone.
    let _lock = RunLock::acquire(out, cfg.is_some())?;
    let (cfg, resume_from) = settings(cfg, out)?;
    let mut changed = cfg.clone();
    if let Some(m) = opts.max_unreadable {
        changed.max_unreadable = m;
    }
    let mut extended_from = None;
    if let Some(epochs) = opts.epochs.filter(|e| *e != cfg.epochs) {
        if let Some(m) = cfg.max_steps {
            return Err(TrainError::Config(format!(
                "{}: this run ends at --max-steps {m}, which --epochs does not change",
                out.display()
            )));
        }
        changed.epochs = epochs;
        extended_from = Some(cfg.epochs);
    }
    let plan = Plan::new(changed, events)?;
    if let Some((_, state)) = resume_from.as_ref().filter(|(_, s)| s.global_step > plan.total_steps) {
        let done = state.global_step.div_ceil(plan.steps_per_epoch);
        return Err(TrainError::Config(format!(
            "{}: the run has done {} steps, which take {done} epoch(s) of {}; --epochs must be at least {done}",
            out.display(),
            state.global_step,
            plan.steps_per_epoch
        )));
    }
    let compute = match chosen {
        Some(c) => c,
        None => computing(&plan.cfg, compute)?,
    };
    // A resumed run whose settings changed keeps them for its later resumes.
    let save_config = resume_from.is_none() || serde_json::to_value(&plan.cfg).ok() != serde_json::to_value(&cfg).ok();
    let start = Start { resume_from, save_config, extended_from };
    let (device, is_gpu) = (compute.device.clone(), compute.is_gpu);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (run, model, opt, state) = Run::start(plan, out, start, compute, events, cancel)?;
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

/// How a run starts: from its latest checkpoint or anew, and whether its
/// `config.json` is (re)written.
struct Start {
    resume_from: Option<(PathBuf, TrainerState)>,
    save_config: bool,
    extended_from: Option<usize>,
}

/// Where `cfg` computes: `compute` when given, else its `--device`; refused
/// in one line where its precision cannot run (mixed precision needs a GPU with SHADER_F16).
fn computing(cfg: &TrainConfig, compute: Option<&backend::Compute>) -> Result<backend::Compute, TrainError> {
    let compute = match compute {
        Some(c) => c.clone(),
        None => backend::select(backend::choice_from(Some(cfg.device))?)?,
    };
    backend::check_f16(&compute, cfg.precision)?;
    Ok(compute)
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
    train_items: Vec<Example>,
    val_items: Vec<Example>,
    test_items: Vec<Example>,
    /// Unreadable files left out of the splits.
    unreadable: usize,
    /// Clips per optimizer step (batch size x gradient accumulation).
    effective: usize,
    steps_per_epoch: u64,
    total_steps: u64,
    warmup: u64,
}

impl Plan {
    /// Checks the settings and the data (each unreadable file is reported as
    /// a `Skipped` event), and counts the steps.
    fn new(cfg: TrainConfig, events: &SyncSender<TrainEvent>) -> Result<Plan, TrainError> {
        if cfg.batch_size == 0 || cfg.grad_accum == 0 || cfg.epochs == 0 {
            return Err(TrainError::Config("batch size, gradient accumulation and epochs must be at least 1".into()));
        }
        if !(cfg.lr > 0.0 && cfg.lr.is_finite()) {
            return Err(TrainError::Config(format!("learning rate must be positive, got {}", cfg.lr)));
        }
        if !(0.0..=1.0).contains(&cfg.max_unreadable) {
            return Err(TrainError::Config(format!(
                "--max-unreadable takes a share from 0 to 1, got {}",
                cfg.max_unreadable
            )));
        }
        let data = dataset_items_of(&cfg.source(), cfg.workers)?;
        for u in &data.unreadable {
            let _ = events.send(TrainEvent::Skipped { path: u.path.clone(), reason: u.reason.clone() });
        }
        data.check_unreadable(&cfg.data, cfg.max_unreadable)?;
        let unreadable = data.unreadable.len();
        let (labels, train_items, val_items, test_items) = (data.labels, data.train, data.val, data.test);
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
        Ok(Plan {
            cfg,
            labels,
            train_items,
            val_items,
            test_items,
            unreadable,
            effective,
            steps_per_epoch,
            total_steps,
            warmup,
        })
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
    space: Space,
}

/// What the run's writes take on its disk: estimated from the model's size
/// until a checkpoint and `best/` are written, then their real sizes.
struct Space {
    checkpoint: Cell<u64>,
    best: Cell<u64>,
    /// Bytes left free beyond them.
    reserve: u64,
}

/// When a space check is made, for the advice of its error.
#[derive(Clone, Copy, PartialEq)]
enum Moment {
    /// Before a new run writes anything.
    New,
    /// Before a resumed run, or an epoch of a run, trains.
    Before,
    /// At the end of an epoch, before its checkpoint is written.
    EpochEnd,
}

impl<'a> Run<'a> {
    /// A new model from the base checkpoint (writing the run's `config.json`),
    /// or the latest checkpoint's weights, moments and position; then the
    /// `Started` event. Returns the run and the model (on the autodiff
    /// device), optimizer and position to train from.
    fn start(
        plan: Plan,
        out: &'a Path,
        start: Start,
        compute: backend::Compute,
        events: &'a SyncSender<TrainEvent>,
        cancel: &'a AtomicBool,
    ) -> Result<(Run<'a>, VideoModel, AdamW, TrainerState), TrainError> {
        let Start { resume_from, save_config, extended_from } = start;
        let ad = compute.device.clone().autodiff();
        std::fs::create_dir_all(out).map_err(io_err(out))?;
        let metrics = Metrics { path: out.join("metrics.jsonl") };
        let cfg = &plan.cfg;
        let reserve = space::reserve()?;
        let (model, opt, state, load_report): (_, _, _, Option<LoadReport>) = match &resume_from {
            Some((dir, state)) => {
                let (m, _) = VideoModel::load(dir, &LoadOptions::default(), &ad)?;
                if m.labels != plan.labels {
                    return Err(TrainError::Config(format!(
                        "{}: the checkpoint's labels differ from the dataset's class folders",
                        dir.display()
                    )));
                }
                let opt = AdamW::load(cfg.adamw.clone(), state.adamw_steps(), &dir.join("optimizer.safetensors"), &ad)?;
                (m, opt, state.clone(), None)
            }
            None => {
                let dir = crate::hub::resolve_model(&cfg.model, cfg.revision.as_deref(), None)?;
                let opts = LoadOptions { labels: Some(plan.labels.clone()), seed: cfg.seed };
                let (m, report) = VideoModel::load(&dir, &opts, &ad)?;
                (m, AdamW::new(cfg.adamw.clone()), TrainerState::default(), Some(report))
            }
        };
        let params = model.net.num_params() as u64;
        let measured = |dir: &Path| Some(space::dir_size(dir)).filter(|s| *s > 0);
        let best_dir = out.join("best");
        let space = Space {
            checkpoint: Cell::new(
                resume_from
                    .as_ref()
                    .and_then(|(d, _)| measured(d))
                    .unwrap_or_else(|| space::checkpoint_estimate(params)),
            ),
            best: Cell::new(measured(&best_dir).unwrap_or_else(|| space::model_estimate(params))),
            reserve,
        };
        // Nothing is written before the disk is known to have room for the run.
        let moment = if resume_from.is_some() { Moment::Before } else { Moment::New };
        check_space(out, &space, checkpoints_left(&plan, &state), moment)?;
        if save_config {
            let json = serde_json::to_string_pretty(cfg).unwrap_or_default();
            let config_path = out.join("config.json");
            crate::util::write_atomic(&config_path, json.as_bytes()).map_err(io_err(&config_path))?;
        }
        match &resume_from {
            Some(_) => metrics.truncate_after(state.global_step)?,
            None => {
                let _ = std::fs::remove_file(&metrics.path);
            }
        }
        let preset = Preset::Train(train_preset(&model, cfg));
        let eval_opts = EvalOptions {
            views: crate::infer::Views { clips: 1, crops: 1, sample_rate: cfg.sample_rate, fps: cfg.fps },
            batch_size: cfg.batch_size,
            workers: cfg.workers,
        };
        let _ = events.send(TrainEvent::Started {
            total_steps: plan.total_steps,
            steps_per_epoch: plan.steps_per_epoch,
            start_step: state.global_step,
            train_videos: plan.train_items.len(),
            val_videos: plan.val_items.len(),
            unreadable: plan.unreadable,
            extended_from_epochs: extended_from,
            labels: plan.labels.clone(),
            device: compute.description.clone(),
            load_report,
        });
        let run = Run { plan, out, metrics, events, cancel, compute, resume_from, preset, eval_opts, space };
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
        let (mut log_loss, mut log_n) = (None::<Scalar>, 0u64);
        let (mut clips_done, t_train) = (0usize, Instant::now());
        let start_step = state.global_step;
        let mut first = true;
        while state.global_step < p.total_steps {
            if !std::mem::take(&mut first) {
                // The disk may have filled since: stop before an epoch whose checkpoint would not fit.
                check_space(self.out, &self.space, checkpoints_left(p, &state), Moment::Before)?;
            }
            // Balanced: the epoch's examples drawn evenly from the classes, from (seed, epoch) alone.
            let epoch_items =
                if cfg.balance { balanced(&p.train_items, cfg.seed, state.epoch) } else { p.train_items.clone() };
            let loader = Loader::new(
                epoch_items,
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
                let mixed = cfg.precision == backend::Precision::F16;
                let loss_scale = mixed.then(|| state.loss_scaler.get_or_insert_with(Default::default).scale);
                let mut acc = GradAccumulator::new(loss_scale);
                let (mut step_loss, mut step_clips) = (None::<Scalar>, 0usize);
                for micro in 0..cfg.grad_accum {
                    let Some(batch) = loader.next() else { break };
                    for (path, reason) in &batch.skipped {
                        let _ = self.events.send(TrainEvent::Skipped { path: path.clone(), reason: reason.clone() });
                    }
                    if batch.labels.is_empty() {
                        continue;
                    }
                    let scale = 1.0 / p.effective as f64;
                    let seed = step_seed(cfg.seed, state.global_step, micro);
                    let loss =
                        accumulate(&model, batch.pixel_values, batch.shape, &batch.labels, scale, seed, &mut acc)?;
                    step_loss = Some(loss.added_to(step_loss));
                    step_clips += batch.labels.len();
                }
                if acc.is_empty() {
                    // The epoch ran out of readable videos.
                    break;
                }
                // The schedule follows AdamW's steps: a skipped mixed-precision step
                // moves it no further (the Trainer's scheduler steps only when the optimizer did).
                let lr = optim::linear_schedule(cfg.lr, state.adamw_steps(), p.warmup, p.total_steps);
                let info;
                (model, info) = apply_step(model, &mut opt, acc, lr);
                if let Some(scaler) = state.loss_scaler.as_mut().filter(|_| mixed) {
                    scaler.update(!info.skipped);
                    state.optimizer_steps = Some(opt.steps);
                }
                state.global_step += 1;
                state.step_in_epoch += 1;
                clips_done += step_clips;
                let elapsed = t_train.elapsed().as_secs_f64();
                let done_here = (state.global_step - start_step) as f64;
                let epoch_f = state.epoch as f64 + state.step_in_epoch as f64 / p.steps_per_epoch as f64;
                let step_loss = step_loss.unwrap_or(Scalar::Host(0.0));
                log_loss = Some(step_loss.clone().added_to(log_loss));
                log_n += 1;
                // Off the CPU, the loss and the gradient norm are read (one wait for the
                // device) on log steps only; the other steps queue their work and go on.
                let log_now = state.global_step.is_multiple_of(cfg.logging_steps.max(1));
                let read = match log_now {
                    true => {
                        let sum = log_loss.take().unwrap_or(Scalar::Host(0.0));
                        let v = Scalar::values(&[step_loss.clone(), info.grad_norm.clone(), sum]);
                        Some((v[0], v[1], v[2] / log_n as f64))
                    }
                    false => None,
                };
                let _ = self.events.send(TrainEvent::Step {
                    step: state.global_step,
                    total_steps: p.total_steps,
                    epoch: epoch_f,
                    loss: read.map(|r| r.0).or(step_loss.host_value()),
                    lr,
                    grad_norm: read.map(|r| r.1).or(info.grad_norm.host_value()),
                    clips_per_s: clips_done as f64 / elapsed.max(1e-9),
                    eta_s: elapsed / done_here * (p.total_steps - state.global_step) as f64,
                });
                if let Some((_, grad_norm, loss)) = read {
                    let loss_scale = state.loss_scaler.as_ref().map(|s| s.scale);
                    let mut line = serde_json::json!({
                        "step": state.global_step, "epoch": epoch_f, "loss": loss, "learning_rate": lr,
                        "grad_norm": grad_norm,
                    });
                    if let Some(s) = loss_scale {
                        line["loss_scale"] = s.into();
                    }
                    self.metrics.append(&line)?;
                    let _ = self.events.send(TrainEvent::Log {
                        step: state.global_step,
                        epoch: epoch_f,
                        loss,
                        lr,
                        grad_norm,
                        loss_scale,
                    });
                    log_n = 0;
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
        check_space(self.out, &self.space, 1, Moment::EpochEnd)?;
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
                self.space.best.set(space::dir_size(&best_dir));
            }
        } else {
            // No val split: the latest model is the one kept.
            state.best_step = Some(state.global_step);
            write_dir_atomically(&best_dir, |d| Ok(eval_model.export(d)?))?;
            self.space.best.set(space::dir_size(&best_dir));
        }
        state.epoch = epoch_done;
        state.step_in_epoch = 0;
        let ckpt = self.out.join(format!("checkpoint-epoch-{epoch_done}"));
        save_checkpoint(&ckpt, &eval_model, opt, state)?;
        self.space.checkpoint.set(space::dir_size(&ckpt));
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
        // Resuming a finished run evaluates its best model again: the row replaces the one of the same step.
        self.metrics.replace_test_row(&serde_json::json!({
            "step": step, "test_accuracy": r.accuracy, "test_top5_accuracy": r.top5_accuracy,
            "test_loss": r.loss, "test_videos": r.videos,
        }))?;
        let dir = self.out.join("test-eval");
        crate::eval::write_report(&r, &dir).map_err(io_err(&dir))?;
        Ok(r)
    }
}

/// The epoch checkpoints a run at `state` still writes (the one of the epoch under way counted).
fn checkpoints_left(plan: &Plan, state: &TrainerState) -> u64 {
    if state.global_step >= plan.total_steps {
        return 0;
    }
    (plan.total_steps - state.global_step + state.step_in_epoch).div_ceil(plan.steps_per_epoch)
}

/// Refuses to go on when the disk of `out` has no room for `checkpoints` more
/// checkpoints and a new `best/` (written beside the old one) and the reserve.
fn check_space(out: &Path, space: &Space, checkpoints: u64, moment: Moment) -> Result<(), TrainError> {
    if checkpoints == 0 {
        return Ok(());
    }
    let Some(free) = space::free_bytes(out) else { return Ok(()) };
    let (ckpt, best) = (space.checkpoint.get(), space.best.get());
    let need = checkpoints.saturating_mul(ckpt).saturating_add(best).saturating_add(space.reserve);
    if free >= need {
        return Ok(());
    }
    let size = crate::util::size_text;
    let mut what = match checkpoints {
        1 => format!("a checkpoint of {} and best/ of {}", size(ckpt), size(best)),
        n => format!("{n} checkpoints of {} and best/ of {}", size(ckpt), size(best)),
    };
    if space.reserve > 0 {
        what += &format!(", with {} left free ({})", size(space.reserve), space::RESERVE_ENV);
    }
    let resume = format!("vidi train --resume {}", out.display());
    let hint = match moment {
        Moment::New => "free some space or pick another --out (nothing was written)".to_string(),
        Moment::Before => format!("free some space, then continue with: {resume}"),
        Moment::EpochEnd => {
            format!("this epoch's steps are not saved; free some space, then continue from the last checkpoint with: {resume}")
        }
    };
    Err(TrainError::NoSpace { dir: out.to_path_buf(), free, need, what, hint })
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

/// Writes a folder aside (`NAME.tmp`) and renames it into place, replacing an
/// older one. When that fails (a full disk), the half-written folder is
/// removed and the older one stays.
fn write_dir_atomically(dir: &Path, fill: impl FnOnce(&Path) -> Result<(), TrainError>) -> Result<(), TrainError> {
    let tmp = dir.with_extension("tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    let old = dir.with_extension("old");
    let placed = (|| {
        std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        fill(&tmp)?;
        if dir.exists() {
            if old.exists() {
                std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
            }
            std::fs::rename(dir, &old).map_err(io_err(dir))?;
        }
        std::fs::rename(&tmp, dir).map_err(io_err(dir))
    })();
    if let Err(e) = placed {
        let _ = std::fs::remove_dir_all(&tmp);
        if !dir.exists() && old.exists() {
            let _ = std::fs::rename(&old, dir);
        }
        return Err(e);
    }
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

    /// Appends a test evaluation's row, in place of one of the same step.
    fn replace_test_row(&self, line: &serde_json::Value) -> Result<(), TrainError> {
        let step = line.get("step").and_then(|s| s.as_u64());
        let raw = match std::fs::read_to_string(&self.path) {
            Ok(raw) => raw,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_err(&self.path)(e)),
        };
        let mut kept: String = raw
            .lines()
            .filter(|l| {
                let v = serde_json::from_str::<serde_json::Value>(l).ok();
                !v.is_some_and(|v| v.get("test_accuracy").is_some() && v.get("step").and_then(|s| s.as_u64()) == step)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        kept += &format!("{line}\n");
        crate::util::write_atomic(&self.path, kept.as_bytes()).map_err(io_err(&self.path))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder whose writing fails part-way (here with the real "no space
    /// left" error of a write to /dev/full) leaves no `NAME.tmp` behind, and
    /// the older folder stays as it was.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_failed_folder_write_leaves_the_older_folder_and_no_tmp() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("checkpoint-epoch-1");
        write_dir_atomically(&dir, |d| std::fs::write(d.join("a"), b"old").map_err(io_err(d))).expect("first write");
        let full = Path::new("/dev/full");
        let e = write_dir_atomically(&dir, |d| {
            std::fs::write(d.join("a"), b"new, half written").map_err(io_err(d))?;
            std::fs::write(full, vec![0u8; 1 << 16]).map_err(io_err(full))
        })
        .expect_err("a write to /dev/full succeeded");
        assert!(matches!(&e, TrainError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC)), "{e}");
        let names: Vec<_> = std::fs::read_dir(tmp.path()).expect("list").flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, ["checkpoint-epoch-1"]);
        assert_eq!(std::fs::read(dir.join("a")).expect("older folder"), b"old");
    }
}
