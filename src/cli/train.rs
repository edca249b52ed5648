//! `vidi train`, `vidi eval` and `vidi demo`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::ProgressBar;

use vidi::train::{TrainConfig, TrainEvent};

use super::common::{load_model, print_json, progress_bar, resolve_model, ModelArgs, TimeoutArg};

/// `vidi train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Continue the run in this folder from its latest checkpoint. Its settings come from its
    /// config.json; only --epochs and --max-unreadable may change them (and are saved there):
    /// any other setting given with it is refused, never silently ignored.
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = [
        "data", "model", "out", "classes", "train_lists", "val_lists", "test_lists", "balance", "revision",
        "batch_size", "grad_accum", "lr", "warmup_ratio", "weight_decay", "beta1", "beta2", "eps",
        "max_grad_norm", "max_steps", "seed", "logging_steps", "workers", "sample_rate", "fps",
        "short_side", "flip_p", "device", "precision",
    ])]
    pub resume: Option<PathBuf>,
    /// Dataset: a folder with train/ and val/ (and test/) holding one folder per class, a
    /// folder of videos with --train/--val lists, or an annotation file with a split column
    /// (see `vidi dataset inspect --help`).
    #[arg(long, required_unless_present = "resume")]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub lists: super::dataset::ListArgs,
    /// Sample the classes evenly: each epoch draws as many clips as the train split has,
    /// the same number from every class (seeded; the model card records it).
    #[arg(long)]
    pub balance: bool,
    /// Base checkpoint: a folder in the transformers layout or a Hub id. Its classifier is
    /// replaced when the dataset's classes differ from its labels.
    #[arg(long, required_unless_present = "resume")]
    pub model: Option<String>,
    /// Branch, tag or commit of a Hub model.
    #[arg(long)]
    pub revision: Option<String>,
    #[command(flatten)]
    pub timeout: TimeoutArg,
    /// The run folder to create: config.json, metrics.jsonl, checkpoint-epoch-N/, best/.
    #[arg(long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Passes over the train split [default: 4]. With --resume, a new length for the run (at
    /// least the epochs begun): the steps done keep their learning rates, the rest follow the
    /// warm-up and linear decay over the new total, as the transformers Trainer does when
    /// resumed with more epochs (so a run extended from 2 to 3 epochs differs from one started
    /// with 3; resumed with its own length, a run repeats the uninterrupted one exactly).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Clips per forward pass. With --grad-accum N, one step sees batch-size x N clips.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Forward passes summed into one optimizer step (a smaller batch with the same effective batch).
    #[arg(long, default_value_t = 1)]
    pub grad_accum: usize,
    /// Peak learning rate of AdamW.
    #[arg(long, default_value_t = 5e-5)]
    pub lr: f64,
    /// Share of the steps over which the learning rate warms up linearly (then decays linearly to 0).
    #[arg(long, default_value_t = 0.1)]
    pub warmup_ratio: f64,
    /// AdamW's decoupled weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// AdamW beta1.
    #[arg(long, default_value_t = 0.9)]
    pub beta1: f64,
    /// AdamW beta2.
    #[arg(long, default_value_t = 0.999)]
    pub beta2: f64,
    /// AdamW epsilon.
    #[arg(long, default_value_t = 1e-8)]
    pub eps: f64,
    /// Clip the global gradient norm to this (0: no clipping).
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    /// Stop after this many steps (default: train videos // effective batch x epochs).
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Seed of the new classifier, the data order and every augmentation.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Log the mean loss every this many steps (on a GPU, the only steps that
    /// read the loss back and so wait for the device).
    #[arg(long, default_value_t = 10)]
    pub logging_steps: u64,
    /// Decoding threads (default: the cores but one, at least 1).
    #[arg(long, default_value_t = vidi::dataset::loader::default_workers())]
    pub workers: usize,
    /// Frame sampling rate: a clip spans model-frames x rate / fps seconds.
    #[arg(long, default_value_t = 4)]
    pub sample_rate: usize,
    /// Nominal frame rate used to size clips.
    #[arg(long, default_value_t = 30.0)]
    pub fps: f64,
    /// Random short-side range MIN,MAX of the train augmentation (default 256,320 for 224-pixel models).
    #[arg(long, value_delimiter = ',', num_args = 2)]
    pub short_side: Option<Vec<usize>>,
    /// Probability of a horizontal flip (0 for data where left and right differ).
    #[arg(long, default_value_t = 0.5)]
    pub flip_p: f64,
    /// Where to compute (default: VIDI_DEVICE, else a GPU when there is one).
    #[arg(long, value_enum)]
    pub device: Option<vidi::backend::DeviceChoice>,
    /// f16: mixed-precision training on a GPU whose adapter has SHADER_F16 (the Linear layers
    /// and attention compute in f16; master weights, AdamW moments, LayerNorm and the loss stay
    /// f32; dynamic loss scaling from 65536, steps whose gradients overflow skipped). Refused
    /// on the CPU and on adapters without f16 shaders. The saved model is f32 either way.
    #[arg(long, value_enum, default_value_t)]
    pub precision: vidi::backend::Precision,
    /// The largest share of a split's videos (train, val or test) that may be unreadable: each
    /// one is reported and left out, and more stops the run before it starts [default: 0.1,
    /// more than 1 in 10]. Works with --resume.
    #[arg(long, value_name = "SHARE")]
    pub max_unreadable: Option<f64>,
    /// Print the progress events as JSON lines instead of a progress bar.
    #[arg(long)]
    pub json: bool,
}

/// `vidi eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Dataset: a folder (split layout, class folders named as the model's labels), a folder
    /// of videos with lists, or an annotation file with a split column (segments are scored
    /// over their own range).
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub lists: super::dataset::ListArgs,
    /// Which split.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Uniform clips per video (the VideoMAE paper: 5 for Kinetics, 2 for SSv2).
    #[arg(long, default_value_t = 1)]
    pub clips: usize,
    /// Spatial crops per clip (the paper: 3). 1 is the guide's resize of the whole frame.
    #[arg(long, default_value_t = 1)]
    pub crops: usize,
    /// Frame sampling rate: a clip spans model-frames x rate / 30 seconds.
    #[arg(long, default_value_t = 4)]
    pub sample_rate: usize,
    /// Views per model call.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Decoding threads (default: the cores but one, at least 1).
    #[arg(long, default_value_t = vidi::dataset::loader::default_workers())]
    pub workers: usize,
    /// Also write report.json, confusion.csv and confusion.png (a labelled heat-map) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the whole report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `vidi demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Folder for the generated videos, the run and the report (new or empty).
    #[arg(long, default_value = "vidi-demo")]
    pub out: PathBuf,
    /// Synthetic videos per motion class.
    #[arg(long, default_value_t = 100)]
    pub videos_per_class: usize,
    /// Motion classes (2-6).
    #[arg(long, default_value_t = 6)]
    pub classes: usize,
    /// Epochs.
    #[arg(long, default_value_t = 15)]
    pub epochs: usize,
    /// Peak learning rate (from scratch wants far more than fine-tuning's 5e-5).
    #[arg(long, default_value_t = vidi::demo::DemoOptions::default().lr)]
    pub lr: f64,
    /// Seed of the data, the model and the training.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to compute (the tiny model is fastest on the CPU).
    #[arg(long, value_enum, default_value_t = vidi::backend::DeviceChoice::Cpu)]
    pub device: vidi::backend::DeviceChoice,
    /// Print the final report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn ctrl_c_token() -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    let c = cancel.clone();
    let _ = ctrlc::set_handler(move || {
        if c.swap(true, Ordering::SeqCst) {
            eprintln!("\nstopping now");
            std::process::exit(130);
        }
        eprintln!("\nstopping after this step and saving a checkpoint (Ctrl-C again to quit at once)");
    });
    cancel
}

/// Renders training events: a progress bar and log lines, or JSON lines.
struct EventView {
    bar: Option<ProgressBar>,
    mode: View,
    /// The last loss read (off the CPU, that of the last log step).
    loss: Option<f64>,
}

/// How training events are shown.
#[derive(Clone, Copy, PartialEq)]
enum View {
    /// Progress bar and log lines on stderr.
    Human,
    /// One JSON object per event on stdout.
    JsonLines,
    /// Nothing (the caller prints one final report).
    Quiet,
}

impl EventView {
    fn new(mode: View) -> EventView {
        EventView { bar: None, mode, loss: None }
    }

    fn line(&self, s: String) {
        match &self.bar {
            // A hidden bar (output not a terminal) prints nothing: log lines still go out.
            Some(b) if !b.is_hidden() => b.println(s),
            _ => eprintln!("{s}"),
        }
    }

    fn show(&mut self, e: &TrainEvent) {
        match self.mode {
            View::Quiet => return,
            View::JsonLines => {
                if let Ok(s) = serde_json::to_string(e) {
                    println!("{s}");
                }
                return;
            }
            View::Human => {}
        }
        match e {
            TrainEvent::Started {
                total_steps,
                start_step,
                train_videos,
                val_videos,
                unreadable,
                extended_from_epochs,
                labels,
                device,
                load_report,
                ..
            } => {
                let left_out = match unreadable {
                    0 => String::new(),
                    n => format!(" ({n} unreadable left out)"),
                };
                eprintln!(
                    "training on {device}: {train_videos} train / {val_videos} val videos{left_out}, {} labels, {total_steps} steps",
                    labels.len()
                );
                if let Some(from) = extended_from_epochs {
                    eprintln!(
                        "the run's length changed (it had {from} epoch(s)): the steps from here follow the learning-rate schedule over {total_steps} steps"
                    );
                }
                if let Some(r) = load_report {
                    if !r.newly_initialized.is_empty() {
                        eprintln!("newly initialised: {}", r.newly_initialized.join(", "));
                    }
                    if !r.unused.is_empty() {
                        eprintln!("unused from the checkpoint: {}", r.unused.join(", "));
                    }
                    if !r.ignored_pretraining.is_empty() {
                        eprintln!("ignored (pre-training only): {} tensors", r.ignored_pretraining.len());
                    }
                }
                let bar = progress_bar(*total_steps, "training");
                bar.set_position(*start_step);
                self.bar = Some(bar);
            }
            TrainEvent::Step { step, loss, lr, clips_per_s, .. } => {
                self.loss = loss.or(self.loss);
                if let Some(b) = &self.bar {
                    b.set_position(*step);
                    let loss = self.loss.map_or("-".into(), |l| format!("{l:.4}"));
                    b.set_message(format!("loss {loss} lr {lr:.2e} {clips_per_s:.1} clips/s"));
                }
            }
            TrainEvent::Log { step, epoch, loss, lr, grad_norm, loss_scale } => self.line(format!(
                "step {step:>6}  epoch {epoch:6.2}  loss {loss:.4}  lr {lr:.3e}  grad_norm {grad_norm:.3}{}",
                loss_scale.map(|s| format!("  loss_scale {s}")).unwrap_or_default()
            )),
            TrainEvent::Eval { epoch, accuracy, loss, videos, .. } => self.line(format!(
                "epoch {epoch}: val accuracy {:.2}% ({videos} videos), val loss {loss:.4}",
                accuracy * 100.0
            )),
            TrainEvent::Checkpoint { path } => self.line(format!("saved {}", path.display())),
            TrainEvent::Skipped { path, reason } => self.line(format!("skipped {}: {reason}", path.display())),
            TrainEvent::Done(s) => {
                if let Some(b) = self.bar.take() {
                    b.finish_and_clear();
                }
                if s.stopped {
                    eprintln!(
                        "stopped at step {}; continue with: vidi train --resume {}",
                        s.steps,
                        s.run_dir.display()
                    );
                }
            }
        }
    }
}

/// Runs `job` on a named thread while this one shows its events.
fn with_events<T: Send>(
    mode: View,
    job: impl FnOnce(&std::sync::mpsc::SyncSender<TrainEvent>) -> T + Send,
) -> Result<T> {
    let (tx, rx) = sync_channel::<TrainEvent>(64);
    std::thread::scope(|s| {
        let h = std::thread::Builder::new().name("vidi-train".into()).spawn_scoped(s, move || job(&tx))?;
        let mut view = EventView::new(mode);
        for e in rx {
            view.show(&e);
        }
        h.join().map_err(|_| anyhow::anyhow!("the training thread panicked"))
    })
}

pub fn train(a: TrainArgs) -> Result<()> {
    let cancel = ctrl_c_token();
    let (cfg, out) = match &a.resume {
        Some(dir) => {
            let opts = vidi::train::ResumeOptions { epochs: a.epochs, max_unreadable: a.max_unreadable };
            let mode = if a.json { View::JsonLines } else { View::Human };
            let summary = with_events(mode, |tx| vidi::train::resume(dir, &opts, tx, &cancel))??;
            return print_summary(&summary, a.json);
        }
        None => {
            let (Some(data), Some(model), Some(out)) = (a.data.clone(), a.model.clone(), a.out.clone()) else {
                bail!("--data, --model and --out are needed (or --resume RUN_DIR)");
            };
            let short_side = match a.short_side.as_deref() {
                Some([lo, hi]) if lo <= hi && *lo > 0 => Some((*lo, *hi)),
                Some(_) => bail!("--short-side takes MIN,MAX with 0 < MIN <= MAX"),
                None => None,
            };
            let cfg = TrainConfig {
                data,
                model,
                revision: a.revision.clone(),
                epochs: a.epochs.unwrap_or(TrainConfig::default().epochs),
                batch_size: a.batch_size,
                grad_accum: a.grad_accum,
                lr: a.lr,
                warmup_ratio: a.warmup_ratio,
                adamw: vidi::train::optim::AdamWConfig {
                    beta1: a.beta1,
                    beta2: a.beta2,
                    eps: a.eps,
                    weight_decay: a.weight_decay,
                    max_grad_norm: a.max_grad_norm,
                },
                max_steps: a.max_steps,
                seed: a.seed,
                logging_steps: a.logging_steps,
                workers: a.workers,
                sample_rate: a.sample_rate,
                fps: a.fps,
                short_side,
                flip_p: a.flip_p,
                device: vidi::backend::choice_from(a.device)?,
                max_unreadable: a.max_unreadable.unwrap_or(vidi::train::DEFAULT_MAX_UNREADABLE),
                classes: a.lists.classes.clone(),
                train_lists: a.lists.train_lists.clone(),
                val_lists: a.lists.val_lists.clone(),
                test_lists: a.lists.test_lists.clone(),
                balance: a.balance,
                precision: a.precision,
            };
            if !cfg.model.is_empty() && !std::path::Path::new(&cfg.model).is_dir() {
                // A Hub id: fetch it with a progress bar before training starts.
                resolve_model(&cfg.model, cfg.revision.as_deref(), a.timeout)?;
            }
            (cfg, out)
        }
    };
    let mode = if a.json { View::JsonLines } else { View::Human };
    let summary = with_events(mode, |tx| vidi::train::train(Some(&cfg), &out, tx, &cancel))??;
    print_summary(&summary, a.json)
}

fn print_summary(summary: &vidi::train::TrainSummary, json: bool) -> Result<()> {
    if json {
        return Ok(());
    }
    if let Some(b) = summary.best_accuracy {
        println!("best val accuracy: {:.2}%", b * 100.0);
    }
    if let Some(t) = &summary.test {
        println!("test accuracy of the best model: {:.2}% ({} videos)", t.accuracy * 100.0, t.videos);
    }
    if let Some(d) = &summary.best_dir {
        println!("best model: {}", d.display());
    }
    println!("run folder: {} ({:.0} s)", summary.run_dir.display(), summary.seconds);
    Ok(())
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let model = load_model(&a.model)?;
    let index = vidi::dataset::index_source(
        &a.lists.source(&a.data),
        &vidi::dataset::IndexOptions { check_readable: true, threads: 2 },
        &mut |_, _| {},
    )?;
    let items = vidi::eval::split_items(&index, &a.split, &model.labels).map_err(anyhow::Error::msg)?;
    let views =
        vidi::infer::Views { clips: a.clips.max(1), crops: a.crops.max(1), sample_rate: a.sample_rate, fps: 30.0 };
    let opts = vidi::eval::EvalOptions { views, batch_size: a.batch_size, workers: a.workers };
    let pb = progress_bar(items.len() as u64, "evaluating");
    let cancel = ctrl_c_token();
    let report = vidi::eval::evaluate(&model, &items, &opts, &mut |d, _| pb.set_position(d as u64), &cancel)?;
    pb.finish_and_clear();
    // Only the split evaluated: the others' unreadable files do not concern this report.
    for u in index.unreadable_in(&a.split) {
        eprintln!("unreadable, not counted: {}: {}", u.path.display(), u.reason);
    }
    if let Some(out) = &a.out {
        vidi::eval::write_report(&report, out).with_context(|| out.display().to_string())?;
    }
    if a.json {
        return print_json(&report);
    }
    println!(
        "accuracy {:.2}%  top-5 {:.2}%  ({} videos, {} clip(s) x {} crop(s))",
        report.accuracy * 100.0,
        report.top5_accuracy * 100.0,
        report.videos,
        report.views[0],
        report.views[1]
    );
    println!("{:<28} {:>9} {:>7} {:>6} {:>8}", "class", "precision", "recall", "f1", "videos");
    for c in &report.per_class {
        println!("{:<28} {:>9.3} {:>7.3} {:>6.3} {:>8}", c.label, c.precision, c.recall, c.f1, c.support);
    }
    print!("\nconfusion matrix (rows: true, columns: predicted)\n{}", report.confusion_csv());
    let wrong: Vec<_> = report.misclassified().collect();
    if !wrong.is_empty() {
        println!("\nmisclassified ({}):", wrong.len());
        for o in wrong {
            let top: Vec<String> = o.top3.iter().map(|p| format!("{} {:.3}", p.label, p.score)).collect();
            println!("  {} [{}] -> {}", o.video.display(), o.label, top.join(", "));
        }
    }
    for (p, why) in &report.failed {
        eprintln!("failed: {}: {why}", p.display());
    }
    if let Some(out) = &a.out {
        println!("\nwrote {}/report.json, confusion.csv, confusion.png", out.display());
    }
    Ok(())
}

pub fn demo(a: DemoArgs) -> Result<()> {
    let cancel = ctrl_c_token();
    let opts = vidi::demo::DemoOptions {
        synth: vidi::demo::SynthOptions {
            classes: a.classes,
            per_class: a.videos_per_class,
            seed: a.seed,
            ..Default::default()
        },
        epochs: a.epochs,
        lr: a.lr,
        seed: a.seed,
        device: a.device,
        ..Default::default()
    };
    if !(2..=6).contains(&a.classes) || a.videos_per_class < 10 {
        bail!("--classes takes 2 to 6, --videos-per-class at least 10");
    }
    let json = a.json;
    let report = with_events(if json { View::Quiet } else { View::Human }, |tx| {
        let mut gen_bar: Option<ProgressBar> = None;
        vidi::demo::run(
            &a.out,
            &opts,
            &mut |stage| match stage {
                vidi::demo::DemoStage::Generating(d, t) if !json => {
                    let b = gen_bar.get_or_insert_with(|| progress_bar(t as u64, "making motion videos"));
                    b.set_position(d as u64);
                }
                vidi::demo::DemoStage::Training => {
                    if let Some(b) = gen_bar.take() {
                        b.finish_and_clear();
                    }
                }
                _ => {}
            },
            tx,
            &cancel,
        )
    })??;
    if json {
        return print_json(&report);
    }
    println!(
        "test accuracy {:.2}% on {} held-out videos ({} motion classes; chance {:.1}%)",
        report.accuracy * 100.0,
        report.test_videos,
        report.labels.len(),
        100.0 / report.labels.len() as f64
    );
    if let Some(v) = report.val_accuracy {
        println!("best val accuracy {:.2}%", v * 100.0);
    }
    if let Some(m) = &report.model_dir {
        println!("model: {}  (try: vidi classify --model {} VIDEO)", m.display(), m.display());
    }
    println!("report: {}/report.json, confusion.png", report.eval_dir.display());
    println!("took {:.0} s", report.seconds);
    Ok(())
}
