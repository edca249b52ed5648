//! Widgets with jobs behind them, as more than one tab has them: the model
//! chooser (Train, Classify), the share box (Train, Evaluate), the video
//! player (Dataset, Evaluate, Classify) and the precision choice (Evaluate,
//! Classify). Each is the widget, the names of its jobs, and the wiring
//! between the two.

use std::path::Path;

use eframe::egui;

use super::command::{Command, CommandSender, Setting};
use super::Env;
use crate::app::jobs::{JobKey, Jobs};
use crate::app::widgets::model_picker::{self, Lookup, ModelPicker, PickerEvent};
use crate::app::widgets::player::{self, Player};
use crate::app::widgets::share_box::{self, ShareBox, ShareEvent};
use crate::backend::{BackendError, Compute, Precision};
use crate::video::RgbFrame;

/// The model chooser: the settings' model, looked up and downloaded as asked.
pub struct ModelChooser {
    picker: ModelPicker,
    check: JobKey<(), Lookup>,
    download: JobKey<u64, (String, Result<(), String>)>,
    hub: crate::hub::HubSettings,
    /// On the Train tab (the base model), else the model Evaluate and Classify use.
    training: bool,
}

impl ModelChooser {
    /// The chooser of the tab `key` (its jobs' names tell the tabs apart).
    pub fn new(key: &str) -> Self {
        ModelChooser {
            picker: ModelPicker::default(),
            check: JobKey::new(format!("vidi-model-check-{key}")),
            download: JobKey::new(format!("vidi-download-{key}")),
            hub: Default::default(),
            training: false,
        }
    }

    /// The setting this chooser edits.
    fn setting(&self) -> fn(String) -> Setting {
        if self.training {
            Setting::Model
        } else {
            Setting::UseModel
        }
    }

    /// Whether a download runs.
    pub fn downloading(&self) -> bool {
        self.picker.downloading()
    }

    fn check(&self, spec: String, commands: &CommandSender) {
        let hub = self.hub.clone();
        commands.start(self.check.start(move |_, _| model_picker::look_up(spec, &hub)));
    }

    /// Draws the chooser. `training`: on the Train tab, it edits the base model;
    /// elsewhere, the model Evaluate and Classify use.
    pub fn show(&mut self, ui: &mut egui::Ui, env: &Env, training: bool) {
        self.hub = env.hub.clone();
        self.training = training;
        let checking = env.jobs.is_running(&self.check);
        let value = if training { &env.settings.model } else { &env.settings.use_model };
        let (events, _) = env.edit(value, self.setting(), |m| self.picker.show(ui, m, checking, training));
        for e in events {
            match e {
                PickerEvent::Check(spec) => self.check(spec, env.commands),
                PickerEvent::Choose(id) => env.commands.set(self.setting()(id)),
                PickerEvent::Download(id) => {
                    let hub = env.hub.clone();
                    env.commands.start(self.download.start(move |report, cancel| {
                        let r = report.clone();
                        let done = model_picker::download(&id, &hub, cancel, move |b| r.offer(b));
                        (id, done)
                    }));
                }
                PickerEvent::CancelDownload => env.commands.send(Command::StopJob(self.download.name().to_string())),
            }
        }
    }

    /// Takes what the lookup and the download sent.
    pub fn poll(&mut self, jobs: &mut Jobs, commands: &CommandSender) {
        if let Some(Ok(found)) = jobs.poll(&self.check).end {
            self.picker.looked_up(found);
        }
        let polled = jobs.poll(&self.download);
        for b in polled.messages {
            self.picker.bytes(b);
        }
        match polled.end {
            Some(Ok((id, Ok(())))) => {
                self.picker.downloaded(Ok(()));
                commands.set(self.setting()(id.clone()));
                // Looked up again at once, so the app stays busy until it says "Ready".
                if jobs.is_running(&self.check) {
                    self.picker.look_again();
                } else {
                    self.check(id, commands);
                }
            }
            Some(Ok((_, Err(e)))) => self.picker.downloaded(Err(e)),
            Some(Err(_)) => self.picker.downloaded(Err("the download stopped".into())),
            None => {}
        }
    }
}

/// The share box of a model folder, with its login lookup and push.
pub struct Sharing {
    share: ShareBox,
    whoami: JobKey<(), Result<String, String>>,
    push: JobKey<(), Result<String, String>>,
}

impl Sharing {
    /// The share box of the tab `key`.
    pub fn new(key: &str) -> Self {
        Sharing {
            share: ShareBox::default(),
            whoami: JobKey::new(format!("vidi-whoami-{key}")),
            push: JobKey::new(format!("vidi-push-{key}")),
        }
    }

    /// Forgets the login, the repo name and the last push.
    pub fn reset(&mut self) {
        self.share = ShareBox::default();
    }

    /// Draws the box for `model_dir`.
    pub fn show(&mut self, ui: &mut egui::Ui, env: &Env, model_dir: &Path) {
        let busy = env.jobs.is_running(&self.whoami) || env.jobs.is_running(&self.push);
        let hub = env.hub.clone();
        match self.share.show(ui, model_dir, busy) {
            Some(ShareEvent::WhoAmI) => env.commands.start(self.whoami.start(move |_, _| share_box::whoami(&hub))),
            Some(ShareEvent::Login(token)) => {
                env.commands.start(self.whoami.start(move |_, _| share_box::login(&hub, &token)))
            }
            Some(ShareEvent::Push { dir, repo, private }) => {
                env.commands.start(self.push.start(move |_, _| share_box::push(&hub, &dir, &repo, private)))
            }
            None => {}
        }
    }

    /// Takes the answers.
    pub fn poll(&mut self, jobs: &mut Jobs) {
        // A job that crashed says so, like one that failed.
        match jobs.poll(&self.whoami).end {
            Some(Ok(u)) => self.share.user(u),
            Some(Err(crashed)) => self.share.user(Err(crashed.to_string())),
            None => {}
        }
        match jobs.poll(&self.push).end {
            Some(Ok(r)) => self.share.pushed(r),
            Some(Err(crashed)) => self.share.pushed(Err(crashed.to_string())),
            None => {}
        }
    }
}

/// A video player and its decoding (which does not make the app busy).
pub struct VideoPlayer {
    player: Player,
    decode: JobKey<RgbFrame, Result<bool, String>>,
}

impl VideoPlayer {
    /// The player of the tab `key`.
    pub fn new(key: &str) -> Self {
        VideoPlayer { player: Player::default(), decode: JobKey::quiet(format!("vidi-player-{key}")) }
    }

    /// The video loaded (or loading).
    pub fn path(&self) -> Option<&Path> {
        self.player.path()
    }

    /// Loads `path` and plays it (nothing happens if it is loaded already).
    pub fn open(&mut self, path: &Path, commands: &CommandSender) {
        self.open_range(path, None, commands);
    }

    /// Loads and plays the part of `path` in `range` (seconds, end exclusive): a segment.
    pub fn open_range(&mut self, path: &Path, range: Option<(f64, f64)>, commands: &CommandSender) {
        if self.player.open_range(path, range) {
            let p = path.to_path_buf();
            commands.restart(
                self.decode.start(move |report, cancel| player::decode_range(&p, range, &|f| report.send(f), cancel)),
            );
        }
    }

    /// Draws the picture and its controls, `height` points high.
    pub fn show(&mut self, ui: &mut egui::Ui, height: f32) {
        self.player.show(ui, height);
    }

    /// Pauses at `secs` from the start.
    pub fn seek_secs(&mut self, secs: f64) {
        self.player.seek_secs(secs);
    }

    /// Takes the decoded frames.
    pub fn poll(&mut self, jobs: &mut Jobs) {
        let polled = jobs.poll(&self.decode);
        for f in polled.messages {
            self.player.add_frame(f);
        }
        if let Some(Ok(r)) = polled.end {
            self.player.finish(r);
        }
    }
}

/// The frame step and fps a run's model was trained and tested with (from its
/// run folder's `config.json`), when `model` is a run's `best/`: evaluated
/// here as its run evaluated it, the two agree.
pub fn run_clip_window(model: &str) -> Option<(usize, f64)> {
    let cfg = Path::new(model.trim()).parent()?.join("config.json");
    let c: crate::train::TrainConfig = serde_json::from_str(&std::fs::read_to_string(cfg).ok()?).ok()?;
    Some((c.sample_rate, c.fps))
}

/// What f16 means in the tabs that run a model (Evaluate, Classify).
pub const F16_INFERENCE: &str =
    "16-bit floats on the GPU, where its adapter has them: faster, scores within about 0.01 of f32's";
/// What f16 means in the Train tab.
pub const F16_TRAINING: &str = "mixed precision on the GPU, where its adapter has 16-bit floats: the layers' \
                                products in f16, the weights kept in f32 (the saved model is f32)";

/// The "Precision:" choice of the tabs that run models: f16 (what it means
/// there: `f16_means`) only where the models are on a GPU.
pub fn precision_choice(ui: &mut egui::Ui, precision: &mut Precision, is_gpu: bool, f16_means: &str) {
    ui.horizontal(|ui| {
        ui.label("Precision:");
        ui.radio_value(precision, Precision::F32, "f32");
        ui.add_enabled_ui(is_gpu, |ui| ui.radio_value(precision, Precision::F16, "f16"))
            .response
            .on_hover_text(f16_means)
            .on_disabled_hover_text("f16 needs the models on a GPU");
    });
}

/// The device a job computes on in `precision`: the models' own for f32; for
/// f16 a second device on the same GPU, made on the first f16 run; or the
/// one-line refusal where the adapter has no SHADER_F16.
pub fn precision_device(compute: Compute, precision: Precision) -> Result<burn::tensor::Device, String> {
    match precision {
        Precision::F32 => Ok(compute.device),
        Precision::F16 => crate::backend::f16_device(&compute).map(|c| c.device).map_err(|e| f16_refusal(&e)),
    }
}

/// The app's one line for a refused f16 (the CLI's names its flag); any
/// other device error as it is.
pub fn f16_refusal(e: &BackendError) -> String {
    match e {
        BackendError::NoF16(why) => format!("f16 is not available: {why}; choose f32"),
        e => e.to_string(),
    }
}
