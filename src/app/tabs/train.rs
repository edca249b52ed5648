//! The Train tab: a dataset, a base model and the training settings; a run
//! started, resumed or stopped, its curves and log; the best model shared.

use std::path::{Path, PathBuf};

use eframe::egui;

use super::command::{Command, CommandSender, Setting};
use super::parts::{ModelChooser, Sharing};
use super::Env;
use crate::app::jobs::{JobKey, Jobs};
use crate::app::widgets::files::{path_field, Pick};
use crate::app::widgets::{error_line, number, plots};
use crate::app::Settings;
use crate::train::TrainEvent;

/// Why a run ended without finishing, in one line, and whether its GPU was lost.
struct Failure {
    message: String,
    gpu_lost: bool,
}

impl Failure {
    fn of(e: &crate::train::TrainError) -> Failure {
        Failure { message: e.to_string(), gpu_lost: matches!(e, crate::train::TrainError::GpuLost { .. }) }
    }
}

/// The Train tab.
pub struct TrainTab {
    model: ModelChooser,
    job: JobKey<TrainEvent, Result<(), Failure>>,
    share: Sharing,
    loss: Vec<[f64; 2]>,
    lr: Vec<[f64; 2]>,
    val: Vec<[f64; 2]>,
    log: Vec<String>,
    step: (u64, u64),
    rate: (f64, f64),
    error: Option<String>,
    /// The last finished run's outcome, in words.
    result: Option<String>,
    /// The run folder of the last run started.
    out: PathBuf,
    /// Sample the classes evenly (`vidi train --balance`).
    balance: bool,
}

impl Default for TrainTab {
    fn default() -> Self {
        TrainTab {
            model: ModelChooser::new("train"),
            job: JobKey::new("vidi-train"),
            share: Sharing::new("train"),
            loss: Vec::new(),
            lr: Vec::new(),
            val: Vec::new(),
            log: Vec::new(),
            step: (0, 0),
            rate: (0.0, 0.0),
            error: None,
            result: None,
            out: PathBuf::new(),
            balance: false,
        }
    }
}

/// How a run starts.
#[derive(Clone, Copy, PartialEq)]
enum Run {
    /// Afresh, with the settings.
    Start,
    /// From the run folder's last checkpoint.
    Resume,
    /// The offline demo.
    Demo,
}

impl TrainTab {
    /// The offline demo, in the first free `vidi-demo[-N]` folder under the downloads folder.
    pub fn run_demo(&mut self, s: &Settings, compute: &crate::backend::Compute, commands: &CommandSender) {
        let base = Path::new(&s.downloads);
        let free = |p: &Path| !p.exists() || std::fs::read_dir(p).map(|mut d| d.next().is_none()).unwrap_or(false);
        let out = (1..1000)
            .map(|i| base.join(if i == 1 { "vidi-demo".to_string() } else { format!("vidi-demo-{i}") }))
            .find(|p| free(p))
            .unwrap_or_else(|| base.join("vidi-demo"));
        self.start_in(s, Run::Demo, &out, compute, commands);
    }

    fn start(&mut self, s: &Settings, run: Run, compute: &crate::backend::Compute, commands: &CommandSender) {
        self.start_in(s, run, &PathBuf::from(&s.run_dir), compute, commands);
    }

    fn start_in(
        &mut self,
        s: &Settings,
        run: Run,
        out: &Path,
        compute: &crate::backend::Compute,
        commands: &CommandSender,
    ) {
        let out = out.to_path_buf();
        self.out = out.clone();
        let compute = compute.clone();
        // A fresh run: its curves, log and share box start empty.
        (self.loss, self.lr, self.val, self.log) = Default::default();
        (self.step, self.rate, self.error, self.result) = Default::default();
        self.share.reset();
        let cfg = crate::train::TrainConfig {
            data: PathBuf::from(&s.data_dir),
            model: s.model.clone(),
            epochs: s.epochs,
            batch_size: s.batch_size,
            grad_accum: s.grad_accum,
            lr: s.lr,
            seed: s.seed,
            device: if compute.is_gpu { crate::backend::DeviceChoice::Gpu } else { crate::backend::DeviceChoice::Cpu },
            balance: self.balance,
            ..Default::default()
        };
        self.log.push(format!("run folder: {}", out.display()));
        commands.start(self.job.start(move |report, cancel| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<TrainEvent>(64);
            std::thread::scope(|sc| {
                // The trainer's events go on to the UI (each one repaints it).
                let forward = std::thread::Builder::new().name("vidi-train-events".into()).spawn_scoped(sc, || {
                    for e in rx {
                        report.send(e);
                    }
                });
                let r = match run {
                    Run::Demo => crate::demo::run(&out, &Default::default(), &mut |_| {}, &tx, cancel)
                        .map(|_| ())
                        .map_err(|e| match &e {
                            crate::demo::DemoError::Train(t) => Failure::of(t),
                            _ => Failure { message: e.to_string(), gpu_lost: false },
                        }),
                    _ => crate::train::train_on((run == Run::Start).then_some(&cfg), &out, &tx, cancel, Some(&compute))
                        .map(|_| ())
                        .map_err(|e| Failure::of(&e)),
                };
                drop(tx);
                match forward {
                    Ok(_) => r,
                    Err(e) => {
                        r.and(Err(Failure { message: format!("could not start a thread: {e}"), gpu_lost: false }))
                    }
                }
            })
        }));
    }

    pub fn show(&mut self, ui: &mut egui::Ui, env: &Env) {
        let s = env.settings;
        ui.heading("Train");
        env.edit(&s.data_dir, Setting::DataDir, |v| {
            path_field(
                ui,
                "Dataset",
                v,
                "a folder with train/ and val/, or a CSV with a split column",
                "Dataset",
                Pick::Folder,
            )
        });
        self.model.show(ui, env, true);
        ui.horizontal(|ui| {
            ui.label("suggestions:");
            for id in
                ["MCG-NJU/videomae-base", "facebook/timesformer-base-finetuned-k400", "google/vivit-b-16x2-kinetics400"]
            {
                if ui.small_button(id).clicked() {
                    env.commands.set(Setting::Model(id.into()));
                }
            }
        });
        env.edit(&s.run_dir, Setting::RunDir, |v| {
            path_field(ui, "Run folder", v, "where checkpoints and best/ go", "Run folder", Pick::Folder)
        });
        egui::Grid::new("train-params").show(ui, |ui| {
            env.edit(&s.epochs, Setting::Epochs, |v| number(ui, "epochs", v, 1..=1000));
            ui.label("passes over the train split");
            ui.end_row();
            env.edit(&s.batch_size, Setting::BatchSize, |v| number(ui, "batch size", v, 1..=256));
            ui.label("clips per forward pass");
            ui.end_row();
            env.edit(&s.grad_accum, Setting::GradAccum, |v| number(ui, "gradient accumulation", v, 1..=64));
            ui.label("passes summed per step (effective batch = batch x this)");
            ui.end_row();
            env.edit(&s.lr, Setting::Lr, |v| {
                let l = ui.label("learning rate");
                ui.add(egui::DragValue::new(v).speed(1e-6).range(1e-7..=1.0)).labelled_by(l.id);
            });
            ui.label("peak of the warm-up/decay schedule (5e-5 fine-tunes)");
            ui.end_row();
            env.edit(&s.seed, Setting::Seed, |v| number(ui, "seed", v, 0..=u64::MAX));
            ui.label("same seed, same run");
            ui.end_row();
            ui.checkbox(&mut self.balance, "balance classes");
            ui.label("draw each epoch's clips evenly from the classes (see the Dataset tab's imbalance warning)");
            ui.end_row();
        });
        let running = env.jobs.is_running(&self.job);
        ui.horizontal(|ui| {
            if ui.add_enabled(!running, egui::Button::new("Start")).clicked() {
                self.start(s, Run::Start, env.compute, env.commands);
            }
            if ui.add_enabled(!running, egui::Button::new("Resume")).clicked() {
                self.start(s, Run::Resume, env.compute, env.commands);
            }
            if ui.add_enabled(running, egui::Button::new("Stop")).clicked() {
                env.commands.send(Command::StopJob(self.job.name().to_string()));
                self.log.push("stopping after this step…".into());
            }
            if ui.add_enabled(!running, egui::Button::new("Run the offline demo")).clicked() {
                self.run_demo(s, env.compute, env.commands);
            }
        });
        error_line(ui, &self.error);
        if let Some(result) = &self.result {
            ui.group(|ui| ui.strong(result));
        }
        let (step, total) = self.step;
        if total > 0 {
            ui.add(
                egui::ProgressBar::new(step as f32 / total as f32)
                    .text(format!("step {step}/{total}  {:.1} clips/s  ETA {:.0} s", self.rate.0, self.rate.1)),
            );
        }
        plots::training(ui, &self.loss, &self.lr, &self.val);
        ui.label("Log:");
        egui::ScrollArea::vertical().id_salt("train-log").max_height(160.0).stick_to_bottom(true).show(ui, |ui| {
            for l in &self.log {
                ui.monospace(l);
            }
        });
        if !running {
            self.share.show(ui, env, &Path::new(&s.run_dir).join("best"));
        }
    }

    /// The status bar's line while training.
    pub fn status(&self, jobs: &Jobs) -> Option<String> {
        let (step, total) = self.step;
        jobs.is_running(&self.job).then(|| format!("training: step {step}/{total}"))
    }

    pub fn poll(&mut self, jobs: &mut Jobs, commands: &CommandSender) {
        self.model.poll(jobs, commands);
        self.share.poll(jobs);
        let polled = jobs.poll(&self.job);
        for e in polled.messages {
            if let TrainEvent::Done(sm) = &e {
                if let Some(best) = sm.best_dir.as_ref().filter(|_| !sm.stopped) {
                    commands.send(Command::Trained(best.clone()));
                }
            }
            self.event(e);
        }
        match polled.end {
            Some(Ok(Err(Failure { message, gpu_lost: true }))) => {
                commands.send(Command::GpuLost("during training".into()));
                self.error = Some(format!(
                    "Training stopped: {message}. Models use the CPU from now on: Resume continues there."
                ));
            }
            Some(Ok(Err(Failure { message, .. }))) => self.error = Some(message),
            Some(Err(crashed)) => self.error = Some(self.crash_message(&crashed.0)),
            _ => {}
        }
    }

    /// What a run that ended without its result leaves the user with, in words.
    fn crash_message(&self, why: &str) -> String {
        let what = format!("Training stopped unexpectedly: {why}.");
        match crate::train::latest_checkpoint(&self.out) {
            Some((dir, state)) => format!(
                "{what} The last checkpoint, {} (step {}), is kept: Resume goes on from it.",
                dir.display(),
                state.global_step
            ),
            None => format!("{what} No checkpoint was written yet: Start begins the run again."),
        }
    }

    fn event(&mut self, e: TrainEvent) {
        match e {
            TrainEvent::Started { total_steps, start_step, device, train_videos, .. } => {
                self.step = (start_step, total_steps);
                self.log.push(format!("training on {device}: {train_videos} videos, {total_steps} steps"));
            }
            TrainEvent::Step { step, total_steps, loss, lr, clips_per_s, eta_s, .. } => {
                self.step = (step, total_steps);
                self.rate = (clips_per_s, eta_s);
                self.loss.push([step as f64, loss]);
                self.lr.push([step as f64, lr]);
            }
            TrainEvent::Log { step, loss, lr, .. } => self.log.push(format!("step {step}: loss {loss:.4} lr {lr:.2e}")),
            TrainEvent::Eval { step, epoch, accuracy, .. } => {
                self.val.push([step as f64, accuracy]);
                self.log.push(format!("epoch {epoch}: val accuracy {:.1}%", accuracy * 100.0));
            }
            TrainEvent::Checkpoint { path } => self.log.push(format!("saved {}", path.display())),
            TrainEvent::Skipped { path, reason } => self.log.push(format!("skipped {}: {reason}", path.display())),
            TrainEvent::Done(sm) => {
                if sm.stopped {
                    self.log.push(format!("stopped at step {}: Resume goes on from here", sm.steps));
                    return;
                }
                let best = sm.best_accuracy.map(|a| format!("{:.1}%", a * 100.0)).unwrap_or("-".into());
                let test = sm.test.as_ref().map(|t| format!("{:.1}% on {} videos", t.accuracy * 100.0, t.videos));
                let model = sm.best_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default();
                self.log.push(format!(
                    "done: best val accuracy {best}; test accuracy {}; model in {model}",
                    test.as_deref().unwrap_or("-")
                ));
                self.result = Some(format!(
                    "Finished in {:.0} s. Test accuracy: {}. Best val accuracy: {best}. The model is in {model}.",
                    sm.seconds,
                    test.as_deref().unwrap_or("no test split"),
                ));
            }
        }
    }
}
