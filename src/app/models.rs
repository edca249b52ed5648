//! The model chooser of the Train and Classify tabs: a folder or a Hub id, and
//! what to do when there is no model yet. With no cached model and no network
//! it says plainly how to get one (open a folder, or run the offline demo);
//! with the network it offers the reference checkpoints with their download
//! size and a progress bar.

use eframe::egui;

use super::{Job, Settings};
use crate::hub::{HubSettings, ModelStatus, REFERENCE_MODELS};

enum Msg {
    Checked { spec: String, status: ModelStatus, offers: Vec<(String, ModelStatus)> },
    Bytes(u64),
    Downloaded(String, Result<(), String>),
}

/// One chooser (the Train and Classify tabs each have one).
#[derive(Default)]
pub struct ModelPanel {
    /// The model last looked up, and what was found.
    checked: Option<(String, ModelStatus)>,
    offers: Vec<(String, ModelStatus)>,
    check: Option<Job<Msg>>,
    download: Option<(String, u64, Job<Msg>)>,
    done_bytes: u64,
    error: Option<String>,
    /// The user asked to look the model up again.
    pub recheck: bool,
}

/// Megabytes, for sizes shown to people.
fn mb(bytes: u64) -> String {
    let m = bytes as f64 / 1e6;
    if m < 10.0 {
        format!("{m:.1} MB")
    } else {
        format!("{m:.0} MB")
    }
}

impl ModelPanel {
    /// Whether a download runs.
    pub fn downloading(&self) -> bool {
        self.download.is_some()
    }

    /// Whether a lookup or a download runs (or a lookup is due).
    pub fn busy(&self) -> bool {
        self.check.is_some() || self.download.is_some() || self.recheck
    }

    fn start_check(&mut self, ctx: &egui::Context, spec: String, hub: &HubSettings) {
        let hub = hub.clone();
        self.check = Some(Job::spawn("vidi-model-check", ctx, move |send, _| {
            let status = crate::hub::model_status(&spec, &hub);
            let offers = match status {
                ModelStatus::Local(_) | ModelStatus::Cached(_) => Vec::new(),
                _ => {
                    let ids: Vec<&str> = REFERENCE_MODELS.iter().map(|r| r.0).filter(|id| *id != spec).collect();
                    let st = crate::hub::model_statuses(&ids, &hub);
                    ids.into_iter().map(String::from).zip(st).collect()
                }
            };
            send(Msg::Checked { spec, status, offers });
        }));
    }

    fn start_download(&mut self, ctx: &egui::Context, spec: String, bytes: u64, hub: &HubSettings) {
        let hub = hub.clone();
        let id = spec.clone();
        self.error = None;
        self.done_bytes = 0;
        let job = Job::spawn("vidi-download", ctx, move |send, _| {
            let r = super::with_hub_progress(&|done, _| send(Msg::Bytes(done)), |progress| {
                crate::hub::resolve_model_with(&id, None, Some(progress), &hub)
            });
            send(Msg::Downloaded(id.clone(), r.map(|_| ()).map_err(|e| e.to_string())));
        });
        self.download = Some((spec, bytes, job));
    }

    /// Draws the model field and, when needed, the way to a model.
    /// `training`: the Train tab (a pre-trained encoder is a fine start there).
    pub fn show(&mut self, ui: &mut egui::Ui, s: &mut Settings, hub: &HubSettings, training: bool) {
        let label = if training { "Base model" } else { "Model" };
        let key = if training { "train-model" } else { "model" };
        let hint = "a model folder or a Hub id (owner/name)";
        let r = super::tabs::path_field(ui, label, &mut s.model, hint, key, super::tabs::Pick::Folder);
        let spec = s.model.trim().to_string();
        let stale = self.checked.as_ref().is_none_or(|(c, _)| *c != spec);
        if (stale && !r.has_focus() || self.recheck) && self.check.is_none() {
            self.recheck = false;
            self.start_check(ui.ctx(), spec.clone(), hub);
        }
        if let Some((id, total, _)) = &self.download {
            ui.add(
                egui::ProgressBar::new(if *total > 0 { self.done_bytes as f32 / *total as f32 } else { 0.0 })
                    .text(format!("downloading {id}: {} of {}", mb(self.done_bytes), mb(*total))),
            );
            return;
        }
        super::tabs::error_line(ui, &self.error);
        let Some((checked, status)) = self.checked.clone() else {
            if self.check.is_some() {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("looking for the model…");
                });
            }
            return;
        };
        match status {
            ModelStatus::Local(_) => {
                ui.label("Ready: a model folder.");
            }
            ModelStatus::Cached(_) => {
                ui.label("Ready: downloaded (in the Hugging Face cache; works offline).");
            }
            ModelStatus::Downloadable { bytes } => {
                ui.horizontal(|ui| {
                    ui.label(format!("{checked} is on the Hub but not downloaded yet."));
                    if ui.button(format!("Download ({})", mb(bytes))).clicked() {
                        self.start_download(ui.ctx(), checked.clone(), bytes, hub);
                    }
                });
            }
            ModelStatus::Unreachable(_) | ModelStatus::NotAModel => {
                self.first_run(ui, s, &checked, &status, hub, training);
            }
        }
    }

    /// No usable model: say what to do.
    fn first_run(
        &mut self,
        ui: &mut egui::Ui,
        s: &mut Settings,
        spec: &str,
        status: &ModelStatus,
        hub: &HubSettings,
        training: bool,
    ) {
        let online = self.offers.iter().any(|(_, o)| matches!(o, ModelStatus::Downloadable { .. }));
        let cached: Vec<String> =
            self.offers.iter().filter(|(_, o)| matches!(o, ModelStatus::Cached(_))).map(|(id, _)| id.clone()).collect();
        egui::Frame::group(ui.style()).show(ui, |ui| {
            match status {
                ModelStatus::NotAModel if spec.is_empty() => ui.strong("No model chosen yet."),
                ModelStatus::NotAModel => ui.strong(format!("'{spec}' is neither a folder nor a Hub id (owner/name).")),
                _ if online => ui.strong(format!("{spec} could not be found on the Hub.")),
                _ => ui.strong(format!("{spec} is not downloaded, and the Hub cannot be reached (no network?).")),
            };
            if !cached.is_empty() {
                ui.horizontal(|ui| {
                    ui.label("Downloaded already:");
                    for id in &cached {
                        if ui.button(id).clicked() {
                            s.model = id.clone();
                        }
                    }
                });
            }
            if online {
                ui.label("Reference checkpoints to download:");
                let offers = self.offers.clone();
                egui::Grid::new("offers").show(ui, |ui| {
                    for (id, o) in &offers {
                        let ModelStatus::Downloadable { bytes } = o else { continue };
                        let about = REFERENCE_MODELS.iter().find(|r| r.0 == id).map(|r| r.1).unwrap_or_default();
                        ui.label(id);
                        ui.label(about);
                        if ui.button(format!("Download ({})", mb(*bytes))).clicked() {
                            s.model = id.clone();
                            self.start_download(ui.ctx(), id.clone(), *bytes, hub);
                        }
                        ui.end_row();
                    }
                });
            } else {
                ui.label("To go on without the network:");
                ui.label(
                    "- open a model folder (Browse…): a run's best/ folder, or any model in the transformers \
                     layout (config.json, preprocessor_config.json, model.safetensors) copied from another machine;",
                );
                ui.label(if training {
                    "- or press \"Run the offline demo\" below: it makes motion videos, fine-tunes a tiny model \
                     on them in about a minute and leaves it in <run folder>/run/best."
                } else {
                    "- or run the offline demo (Train tab, \"Run the offline demo\"): it fine-tunes a tiny model \
                     in about a minute; then choose <run folder>/run/best here."
                });
            }
            if ui.button("Look again").clicked() {
                self.recheck = true;
            }
        });
    }

    /// Takes what the lookup and download jobs sent (every frame, whichever tab shows).
    pub fn poll(&mut self, s: &mut Settings) {
        if let Some(job) = self.check.as_mut() {
            for m in job.poll() {
                if let Msg::Checked { spec, status, offers } = m {
                    self.checked = Some((spec, status));
                    self.offers = offers;
                }
            }
            if job.is_done() {
                self.check = None;
            }
        }
        let mut finished = None;
        if let Some((_, _, job)) = self.download.as_mut() {
            for m in job.poll() {
                match m {
                    Msg::Bytes(b) => self.done_bytes = b,
                    Msg::Downloaded(id, r) => finished = Some((id, r)),
                    Msg::Checked { .. } => {}
                }
            }
            if job.is_done() && finished.is_none() {
                finished = Some((String::new(), Err("the download stopped".into())));
            }
        }
        if let Some((id, r)) = finished {
            self.download = None;
            match r {
                Ok(()) => {
                    s.model = id;
                    self.recheck = true;
                }
                Err(e) => self.error = Some(e),
            }
        }
    }
}
