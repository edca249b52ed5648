//! The Train tab: a dataset, a base model and the training settings (a preset
//! in plain words, the numbers behind "Advanced"); a run started, resumed or
//! stopped, its curves and log (reloaded from the run's `metrics.jsonl`); at
//! the end, a card with the run's results and the next steps; the best model shared.

use std::path::{Path, PathBuf};

use eframe::egui;

use super::command::{Command, CommandSender, Setting};
use super::parts::{ModelChooser, Sharing};
use super::{Env, Tab};
use crate::app::jobs::{JobKey, Jobs};
use crate::app::widgets::files::{path_field, Pick};
use crate::app::widgets::{error_line, number, plots, warning_text};
use crate::app::Settings;
use crate::demo::DemoOptions;
use crate::train::TrainEvent;

/// Why a run ended without finishing, in one line, and whether its GPU was lost.
struct Failure {
    message: String,
    gpu_lost: bool,
}

impl Failure {
    fn of(e: &crate::train::TrainError) -> Failure {
        use crate::train::TrainError;
        let message = match e {
            // The app's words for a refused f16 (the trainer's name the CLI flag).
            TrainError::Backend(b) => super::parts::f16_refusal(b),
            e => e.to_string(),
        };
        Failure { message, gpu_lost: matches!(e, TrainError::GpuLost { .. }) }
    }
}

/// What a training job reports.
enum Progress {
    /// The demo's videos made so far, of all.
    Making(usize, usize),
    /// The trainer's events.
    Train(TrainEvent),
}

/// A finished run's outcome, for the end-of-training card.
struct Outcome {
    seconds: f64,
    best_val: Option<f64>,
    /// Test accuracy and videos.
    test: Option<(f64, usize)>,
    model: Option<PathBuf>,
    /// The dataset it trained on (its test split feeds the next steps).
    data: PathBuf,
}

/// The presets: a name, what it means, epochs.
const PRESETS: [(&str, &str, usize); 3] = [
    ("Quick try", "1 pass over the training clips: minutes, to see that everything works", 1),
    ("Good", "4 passes, as the guide trains: the usual choice", 4),
    ("Best", "10 passes: slower, often a little more accurate", 10),
];

/// The Train tab.
pub struct TrainTab {
    model: ModelChooser,
    job: JobKey<Progress, Result<(), Failure>>,
    share: Sharing,
    loss: Vec<[f64; 2]>,
    lr: Vec<[f64; 2]>,
    val: Vec<[f64; 2]>,
    log: Vec<String>,
    step: (u64, u64),
    rate: (f64, f64),
    /// The demo's videos made, of all (while it makes them).
    making: Option<(usize, usize)>,
    error: Option<String>,
    /// The last finished run's outcome.
    result: Option<Outcome>,
    /// The run folder of the last run started, and its dataset.
    out: PathBuf,
    /// Sample the classes evenly (`vidi train --balance`).
    balance: bool,
    /// f32, or f16 for mixed precision (`vidi train --precision`).
    precision: crate::backend::Precision,
    data: PathBuf,
    /// The demo's settings, while the demo is the run shown.
    demo: Option<DemoOptions>,
    /// Stop was pressed: the steps still queued are not logged.
    stopping: bool,
    /// The run folder Start found holding a run (Resume it, or start in a new folder).
    existing: Option<PathBuf>,
    /// Whether the run shown has a val split (known once it starts).
    val_videos: Option<usize>,
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
            making: None,
            error: None,
            result: None,
            out: PathBuf::new(),
            balance: false,
            precision: crate::backend::Precision::F32,
            data: PathBuf::new(),
            demo: None,
            stopping: false,
            existing: None,
            val_videos: None,
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

/// Whether `dir` holds a run (its settings or a checkpoint).
fn holds_run(dir: &Path) -> bool {
    dir.join("config.json").exists() || crate::train::latest_checkpoint(dir).is_some()
}

/// The first of `dir`, `dir-2`, `dir-3`... that is missing or empty.
fn free_folder(dir: &Path) -> PathBuf {
    let free = |p: &Path| !p.exists() || std::fs::read_dir(p).map(|mut d| d.next().is_none()).unwrap_or(false);
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "vidi-run".into());
    (1..1000)
        .map(|i| if i == 1 { dir.to_path_buf() } else { dir.with_file_name(format!("{name}-{i}")) })
        .find(|p| free(p))
        .unwrap_or_else(|| dir.to_path_buf())
}

/// The curves a run folder's `metrics.jsonl` holds: loss, learning rate, val accuracy.
type Curves = (Vec<[f64; 2]>, Vec<[f64; 2]>, Vec<[f64; 2]>);

fn read_curves(run: &Path) -> Curves {
    let mut c: Curves = Default::default();
    let Ok(raw) = std::fs::read_to_string(run.join("metrics.jsonl")) else { return c };
    for v in raw.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()) {
        let Some(step) = v.get("step").and_then(|s| s.as_f64()) else { continue };
        let f = |k: &str| v.get(k).and_then(|x| x.as_f64());
        if let Some(loss) = f("loss") {
            c.0.push([step, loss]);
        }
        if let Some(lr) = f("learning_rate") {
            c.1.push([step, lr]);
        }
        if let Some(acc) = f("eval_accuracy") {
            c.2.push([step, acc]);
        }
    }
    c
}

/// One test video per class of `data`'s test split (else val, else train), to try a model on.
fn sample_videos(data: &Path) -> Vec<PathBuf> {
    for split in ["test", "val", "train"] {
        let Ok(classes) = std::fs::read_dir(data.join(split)) else { continue };
        let mut classes: Vec<PathBuf> = classes.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
        classes.sort();
        let picked: Vec<PathBuf> = classes
            .iter()
            .filter_map(|c| {
                let mut v: Vec<PathBuf> =
                    std::fs::read_dir(c).ok()?.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
                v.sort();
                v.into_iter().next()
            })
            .collect();
        if !picked.is_empty() {
            return picked;
        }
    }
    Vec::new()
}

impl TrainTab {
    /// The offline demo (`opts`), in the first free `vidi-demo[-N]` folder under the downloads folder.
    pub fn run_demo(&mut self, s: &Settings, opts: &DemoOptions, commands: &CommandSender) {
        let out = free_folder(&Path::new(&s.downloads).join("vidi-demo"));
        self.demo = Some(opts.clone());
        self.start_in(s, Run::Demo, &out, &crate::backend::cpu(), commands);
    }

    fn start(&mut self, s: &Settings, run: Run, compute: &crate::backend::Compute, commands: &CommandSender) {
        let out = PathBuf::from(&s.run_dir);
        self.existing = None;
        if run == Run::Start && holds_run(&out) {
            // Not started: the run there is shown, with the choice of resuming it or a new folder.
            (self.loss, self.lr, self.val) = read_curves(&out);
            (self.error, self.result, self.demo) = (None, None, None);
            self.existing = Some(out);
            return;
        }
        self.demo = None;
        self.start_in(s, run, &out, compute, commands);
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
        // The run's curves so far (a resumed run's, from its metrics.jsonl); its log and share box start empty.
        (self.loss, self.lr, self.val) = if run == Run::Resume { read_curves(&out) } else { Default::default() };
        self.log = Vec::new();
        (self.step, self.rate, self.error, self.result, self.making) = Default::default();
        (self.stopping, self.val_videos) = (false, None);
        self.share.reset();
        let src = s.data_source();
        let cfg = crate::train::TrainConfig {
            data: src.path,
            classes: src.classes,
            train_lists: src.train,
            val_lists: src.val,
            test_lists: src.test,
            model: s.model.clone(),
            epochs: s.epochs,
            batch_size: s.batch_size,
            grad_accum: s.grad_accum,
            lr: s.lr,
            seed: s.seed,
            device: if compute.is_gpu { crate::backend::DeviceChoice::Gpu } else { crate::backend::DeviceChoice::Cpu },
            balance: self.balance,
            precision: self.precision,
            ..Default::default()
        };
        let demo = self.demo.clone().unwrap_or_default();
        self.data = if run == Run::Demo { out.join("split") } else { cfg.data.clone() };
        self.log.push(format!("run folder: {}", out.display()));
        commands.start(self.job.start(move |report, cancel| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<TrainEvent>(64);
            std::thread::scope(|sc| {
                // The trainer's events go on to the UI (each one repaints it).
                let forward = std::thread::Builder::new().name("vidi-train-events".into()).spawn_scoped(sc, || {
                    for e in rx {
                        report.send(Progress::Train(e));
                    }
                });
                let mut stage = |st: crate::demo::DemoStage| {
                    if let crate::demo::DemoStage::Generating(d, t) = st {
                        report.offer(Progress::Making(d, t));
                    }
                };
                let r = match run {
                    Run::Demo => {
                        crate::demo::run(&out, &demo, &mut stage, &tx, cancel).map(|_| ()).map_err(|e| match &e {
                            crate::demo::DemoError::Train(t) => Failure::of(t),
                            _ => Failure { message: e.to_string(), gpu_lost: false },
                        })
                    }
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

    /// The settings' form, or, while the demo is the run shown, the demo's own settings.
    fn form(&mut self, ui: &mut egui::Ui, env: &Env, running: bool, imbalance: &[String]) {
        let s = env.settings;
        if let Some(d) = self.demo.clone() {
            ui.group(|ui| {
                ui.strong("The offline demo's own settings (your settings below are kept for your runs):");
                egui::Grid::new("demo-settings").show(ui, |ui| {
                    let classes = d.synth.classes.clamp(2, crate::demo::MOTIONS.len());
                    let rows = [
                        ("dataset", format!("{classes} motions x {} videos, made here", d.synth.per_class)),
                        ("base model", "a tiny VideoMAE from random weights (32x32 pixels, 8 frames)".into()),
                        ("run folder", self.out.join("run").display().to_string()),
                        ("epochs", d.epochs.to_string()),
                        ("batch size", d.batch_size.to_string()),
                        ("learning rate", format!("{:e}", d.lr)),
                        ("seed", d.seed.to_string()),
                    ];
                    for (k, v) in rows {
                        ui.label(k);
                        ui.label(v);
                        ui.end_row();
                    }
                });
                if !running && ui.button("Show my settings").clicked() {
                    self.demo = None;
                }
            });
            return;
        }
        let (_, data) = env.edit(&s.data_dir, Setting::DataDir, |v| {
            path_field(
                ui,
                "Dataset",
                v,
                "a folder with train/ and val/, or a CSV with a split column",
                "Dataset",
                Pick::Folder,
            )
        });
        let data = Path::new(&data);
        if !s.data_lists.is_empty() {
            ui.weak("with the split lists set on the Dataset tab");
        } else if !data.as_os_str().is_empty() && data.is_dir() {
            if !data.join("train").is_dir() {
                warning_text(
                    ui,
                    "This folder is not split into train/, val/ and test/: split it on the Dataset tab first.",
                );
            } else if !data.join("val").is_dir() {
                warning_text(
                    ui,
                    "No val/ split: training cannot measure itself as it goes or keep its best epoch \
                     (the last one is kept). Split the data on the Dataset tab to get one.",
                );
            }
        }
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
        ui.horizontal(|ui| {
            ui.label("How long to train:");
            for (name, what, epochs) in PRESETS {
                if ui.radio(s.epochs == epochs, name).on_hover_text(what).clicked() {
                    env.commands.set(Setting::Epochs(epochs));
                }
            }
        });
        match PRESETS.iter().find(|p| p.2 == s.epochs) {
            Some((_, what, _)) => ui.weak(*what),
            None => ui.weak(format!("{} passes over the training clips (set under Advanced)", s.epochs)),
        };
        for w in imbalance {
            warning_text(ui, &format!("{}.", w.split("; consider").next().unwrap_or(w)));
        }
        ui.checkbox(&mut self.balance, "Balance classes")
            .on_hover_text("draw each epoch's clips evenly from the classes (for data with a much larger class)");
        egui::CollapsingHeader::new("Advanced: epochs, batch size, learning rate, seed, precision")
            .id_salt("train-advanced")
            .show(ui, |ui| {
                let f16 = super::parts::F16_TRAINING;
                super::parts::precision_choice(ui, &mut self.precision, env.compute.is_gpu, f16);
                egui::Grid::new("train-params").show(ui, |ui| {
                    env.edit(&s.epochs, Setting::Epochs, |v| number(ui, "epochs", v, 1..=1000));
                    ui.label("passes over the train split");
                    ui.end_row();
                    env.edit(&s.batch_size, Setting::BatchSize, |v| number(ui, "batch size", v, 1..=256));
                    ui.label("clips per forward pass (lower it if memory runs out)");
                    ui.end_row();
                    env.edit(&s.grad_accum, Setting::GradAccum, |v| number(ui, "gradient accumulation", v, 1..=64));
                    ui.label("passes summed per step (effective batch = batch x this)");
                    ui.end_row();
                    env.edit(&s.lr, Setting::Lr, |v| {
                        let l = ui.label("learning rate");
                        ui.add(egui::DragValue::new(v).speed(1e-6).range(1e-7..=1.0)).labelled_by(l.id);
                    });
                    ui.label("how big each step is: 5e-5 fine-tunes a pre-trained model");
                    ui.end_row();
                    env.edit(&s.seed, Setting::Seed, |v| number(ui, "seed", v, 0..=u64::MAX));
                    ui.label("same seed, same run");
                    ui.end_row();
                });
            });
    }

    /// Draws the tab; `imbalance` holds the Dataset tab's class-imbalance
    /// warnings of the dataset set here, when it has read it.
    pub fn show(&mut self, ui: &mut egui::Ui, env: &Env, imbalance: &[String]) {
        let s = env.settings;
        ui.heading("Train");
        let running = env.jobs.is_running(&self.job);
        self.form(ui, env, running, imbalance);
        ui.horizontal(|ui| {
            if ui.add_enabled(!running, egui::Button::new("Start")).clicked() {
                self.start(s, Run::Start, env.compute, env.commands);
            }
            let resumable = crate::train::latest_checkpoint(Path::new(&s.run_dir)).is_some();
            if ui
                .add_enabled(!running && resumable, egui::Button::new("Resume"))
                .on_disabled_hover_text("the run folder holds no checkpoint yet")
                .clicked()
            {
                self.start(s, Run::Resume, env.compute, env.commands);
            }
            if ui.add_enabled(running && !self.stopping, egui::Button::new("Stop")).clicked() {
                env.commands.send(Command::StopJob(self.job.name().to_string()));
                self.stopping = true;
                self.log.push("stopping: the step under way ends and a checkpoint is saved…".into());
            }
            if ui.add_enabled(!running, egui::Button::new("Run the offline demo")).clicked() {
                env.commands.send(Command::RunDemo);
            }
        });
        if let Some(dir) = self.existing.clone() {
            ui.group(|ui| {
                let at = crate::train::latest_checkpoint(&dir).map(|(_, st)| st.global_step);
                ui.strong(match at {
                    Some(step) => format!("{} already holds a run (its last checkpoint: step {step}).", dir.display()),
                    None => format!("{} already holds a run.", dir.display()),
                });
                ui.horizontal(|ui| {
                    if at.is_some() && ui.button("Resume that run").clicked() {
                        self.start(s, Run::Resume, env.compute, env.commands);
                    }
                    let fresh = free_folder(&dir);
                    if ui.button(format!("Start afresh in {}", fresh.display())).clicked() {
                        let fresh = fresh.to_string_lossy().into_owned();
                        env.commands.set(Setting::RunDir(fresh.clone()));
                        let s2 = Settings { run_dir: fresh, ..s.clone() };
                        self.start(&s2, Run::Start, env.compute, env.commands);
                    }
                });
            });
        }
        error_line(ui, &self.error);
        if self.val_videos == Some(0) {
            warning_text(
                ui,
                "This run has no val split: there is no val accuracy, and the last epoch's model is kept as best/.",
            );
        }
        self.card(ui, env);
        if let Some((d, t)) = self.making.filter(|_| running && self.step.1 == 0) {
            ui.add(
                egui::ProgressBar::new(crate::app::widgets::fraction(d as u64, t as u64))
                    .text(format!("making the demo's videos: {d}/{t}")),
            );
        }
        let (step, total) = self.step;
        if total > 0 && (running || self.result.is_none()) {
            let text = if self.stopping && running {
                format!("step {step}/{total}  stopping: saving a checkpoint…")
            } else if running {
                format!("step {step}/{total}  {:.1} clips/s  about {} left", self.rate.0, duration(self.rate.1))
            } else {
                format!("step {step}/{total}")
            };
            ui.add(egui::ProgressBar::new(step as f32 / total as f32).text(text));
        }
        plots::training(ui, &self.loss, &self.lr, &self.val);
        let mut last = Vec::new();
        if let Some([s, l]) = self.loss.last() {
            last.push(format!("last train loss {l:.4} at step {s}"));
        }
        if let Some([s, a]) = self.val.last() {
            last.push(format!("last val accuracy {:.1}% at step {s}", a * 100.0));
        }
        if !last.is_empty() {
            ui.weak(last.join(";  "));
        }
        ui.label("Log:");
        egui::ScrollArea::vertical().id_salt("train-log").max_height(160.0).stick_to_bottom(true).show(ui, |ui| {
            for l in &self.log {
                ui.monospace(l);
            }
        });
        if !running {
            let best = self.result.as_ref().and_then(|r| r.model.clone());
            self.share.show(ui, env, &best.unwrap_or_else(|| Path::new(&s.run_dir).join("best")));
        }
    }

    /// The end-of-training card: what the run gave, where its model is, what to do next.
    fn card(&self, ui: &mut egui::Ui, env: &Env) {
        let Some(r) = &self.result else { return };
        let pct = |a: f64| format!("{:.1}%", a * 100.0);
        egui::Frame::group(ui.style()).fill(ui.visuals().faint_bg_color).show(ui, |ui| {
            ui.heading("Training finished");
            match r.test {
                Some((acc, videos)) => ui.strong(format!(
                    "Test accuracy: {} ({} of the {videos} test videos it had never seen were labelled right).",
                    pct(acc),
                    (acc * videos as f64).round() as usize
                )),
                None => ui.strong("Test accuracy: none (this dataset has no test split)."),
            };
            ui.label(match r.best_val {
                Some(v) => format!("Best val accuracy: {}.", pct(v)),
                None => "Best val accuracy: none (no val split).".into(),
            });
            ui.label(format!("Time taken: {}.", duration(r.seconds)));
            if let Some(m) = &r.model {
                ui.label(format!("The model is in {}.", m.display()));
            }
            let Some(model) = r.model.clone() else { return };
            ui.horizontal(|ui| {
                ui.label("Next:");
                let use_it = |ui: &mut egui::Ui| {
                    ui.ctx().request_repaint();
                    env.commands.set(Setting::UseModel(model.to_string_lossy().into_owned()));
                    env.commands.set(Setting::DataDir(r.data.to_string_lossy().into_owned()));
                };
                if ui.button("Evaluate this model").clicked() {
                    use_it(ui);
                    env.commands.send(Command::ShowTab(Tab::Evaluate));
                }
                if ui.button("Try it in Classify").clicked() {
                    use_it(ui);
                    let videos = sample_videos(&r.data);
                    if videos.is_empty() {
                        env.commands.send(Command::ShowTab(Tab::Classify));
                    } else {
                        env.commands.send(Command::OpenPaths(videos));
                    }
                }
            });
        });
    }

    /// The status bar's line while training.
    pub fn status(&self, jobs: &Jobs) -> Option<String> {
        let (step, total) = self.step;
        jobs.is_running(&self.job).then(|| match self.making {
            Some((d, t)) if total == 0 => format!("making the demo's videos: {d}/{t}"),
            _ => format!("training: step {step}/{total}"),
        })
    }

    pub fn poll(&mut self, jobs: &mut Jobs, commands: &CommandSender) {
        self.model.poll(jobs, commands);
        self.share.poll(jobs);
        let polled = jobs.poll(&self.job);
        for p in polled.messages {
            let e = match p {
                Progress::Making(d, t) => {
                    self.making = Some((d, t));
                    continue;
                }
                Progress::Train(e) => e,
            };
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
            TrainEvent::Started { total_steps, start_step, device, train_videos, val_videos, .. } => {
                self.step = (start_step, total_steps);
                self.val_videos = Some(val_videos);
                if start_step > 0 {
                    // What came after the checkpoint is done again.
                    for c in [&mut self.loss, &mut self.lr, &mut self.val] {
                        c.retain(|p| p[0] <= start_step as f64);
                    }
                    self.log.push(format!("resumed from step {start_step}"));
                }
                self.log.push(format!("training on {device}: {train_videos} videos, {total_steps} steps"));
            }
            TrainEvent::Step { step, total_steps, loss, lr, clips_per_s, eta_s, .. } => {
                self.step = (step, total_steps);
                self.rate = (clips_per_s, eta_s);
                // Off the CPU the loss is read on log steps only.
                if let Some(loss) = loss {
                    self.loss.push([step as f64, loss]);
                }
                self.lr.push([step as f64, lr]);
            }
            // Once Stop is pressed, the steps still queued are not logged.
            TrainEvent::Log { .. } if self.stopping => {}
            TrainEvent::Log { step, loss, lr, .. } => self.log.push(format!("step {step}: loss {loss:.4} lr {lr:.2e}")),
            TrainEvent::Eval { step, epoch, accuracy, .. } => {
                self.val.push([step as f64, accuracy]);
                self.log.push(format!("epoch {epoch}: val accuracy {:.1}%", accuracy * 100.0));
            }
            TrainEvent::Checkpoint { path } => self.log.push(format!("saved {}", path.display())),
            TrainEvent::Skipped { path, reason } => self.log.push(format!("skipped {}: {reason}", path.display())),
            TrainEvent::Done(sm) => {
                if sm.stopped {
                    self.step.0 = sm.steps;
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
                self.result = Some(Outcome {
                    seconds: sm.seconds,
                    best_val: sm.best_accuracy,
                    test: sm.test.as_ref().map(|t| (t.accuracy, t.videos)),
                    model: sm.best_dir.clone(),
                    data: self.data.clone(),
                });
            }
        }
    }
}

/// Seconds in words: "40 s", "3 min 5 s", "1 h 2 min".
fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}
