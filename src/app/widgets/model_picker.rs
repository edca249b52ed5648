//! The model chooser: a folder or a Hub id, and what to do when there is no
//! model yet. With no cached model and no network it says plainly how to get
//! one (open a folder, or run the offline demo); with the network it offers
//! the reference checkpoints with their download size and a progress bar.
//!
//! The lookup and the download are [`look_up`] and [`download`]; the owner
//! runs them on worker threads when [`ModelPicker::show`] asks, and hands
//! back what they found.

use eframe::egui;

use crate::hub::{HubSettings, ModelStatus, REFERENCE_MODELS};

/// What [`ModelPicker::show`] asks its owner to do.
pub enum PickerEvent {
    /// Look the model up ([`look_up`]); hand the answer to [`ModelPicker::looked_up`].
    Check(String),
    /// Download it ([`download`]): bytes to [`ModelPicker::bytes`], the end to [`ModelPicker::downloaded`].
    Download(String),
    /// Make this the model.
    Choose(String),
    /// Stop the download (it ends with [`ModelPicker::downloaded`]).
    CancelDownload,
}

/// What a lookup found: the model's status and, when it is not usable,
/// the reference checkpoints and theirs.
pub struct Lookup {
    /// The model looked up.
    pub spec: String,
    /// What was found.
    pub status: ModelStatus,
    /// The other reference checkpoints, when the model is not usable.
    pub offers: Vec<(String, ModelStatus)>,
}

/// Looks `spec` up (on a worker thread: it may ask the Hub).
pub fn look_up(spec: String, hub: &HubSettings) -> Lookup {
    let status = crate::hub::model_status(&spec, hub);
    let offers = match status {
        ModelStatus::Local(_) | ModelStatus::Cached(_) => Vec::new(),
        _ => {
            let ids: Vec<&str> = REFERENCE_MODELS.iter().map(|r| r.0).filter(|id| *id != spec).collect();
            let st = crate::hub::model_statuses(&ids, hub);
            ids.into_iter().map(String::from).zip(st).collect()
        }
    };
    Lookup { spec, status, offers }
}

/// Downloads the model `id` into the Hub cache (on a worker thread), telling
/// `on_bytes` the bytes done; stops, removing its partial file, once `cancel` is set.
pub fn download(
    id: &str,
    hub: &HubSettings,
    cancel: &std::sync::atomic::AtomicBool,
    on_bytes: impl Fn(u64) + Send + Sync + 'static,
) -> Result<(), String> {
    let progress = crate::hub::progress(move |t| on_bytes(t.done));
    let opts = crate::hub::DownloadOptions { progress: Some(progress), cancel: Some(cancel), timeout: None };
    crate::hub::resolve_model_opts(id, None, hub, &opts).map(|_| ()).map_err(|e| e.to_string())
}

/// One chooser's state.
#[derive(Default)]
pub struct ModelPicker {
    /// The model last looked up, and what was found.
    checked: Option<(String, ModelStatus)>,
    offers: Vec<(String, ModelStatus)>,
    /// The model downloading, and its size.
    download: Option<(String, u64)>,
    done_bytes: u64,
    error: Option<String>,
    /// The user asked to look the model up again.
    recheck: bool,
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

impl ModelPicker {
    /// Whether a download runs.
    pub fn downloading(&self) -> bool {
        self.download.is_some()
    }

    /// Look the model up again once no lookup runs.
    pub fn look_again(&mut self) {
        self.recheck = true;
    }

    /// What a lookup found.
    pub fn looked_up(&mut self, found: Lookup) {
        self.checked = Some((found.spec, found.status));
        self.offers = found.offers;
    }

    /// Bytes downloaded so far.
    pub fn bytes(&mut self, done: u64) {
        self.done_bytes = done;
    }

    /// The download ended (`Err`: why it failed).
    pub fn downloaded(&mut self, r: Result<(), String>) {
        self.download = None;
        if let Err(e) = r {
            self.error = Some(e);
        }
    }

    fn start_download(&mut self, id: &str, bytes: u64, events: &mut Vec<PickerEvent>) {
        self.error = None;
        self.done_bytes = 0;
        self.download = Some((id.to_string(), bytes));
        events.push(PickerEvent::Download(id.to_string()));
    }

    /// Draws the model field (`model`) and, when needed, the way to a model.
    /// `checking`: a lookup runs. `training`: the Train tab (a pre-trained
    /// encoder is a fine start there).
    pub fn show(&mut self, ui: &mut egui::Ui, model: &mut String, checking: bool, training: bool) -> Vec<PickerEvent> {
        let mut events = Vec::new();
        let label = if training { "Base model" } else { "Model to use" };
        let key = if training { "train-model" } else { "model" };
        let hint = "a model folder or a Hub id (owner/name)";
        let r = super::files::path_field(ui, label, model, hint, key, super::files::Pick::Folder);
        ui.weak(if training {
            "the model training starts from (its own field: Evaluate and Classify have theirs)"
        } else {
            "one field, shared by Evaluate and Classify (training fills it with the model it made)"
        });
        let spec = model.trim().to_string();
        let stale = self.checked.as_ref().is_none_or(|(c, _)| *c != spec);
        let mut checking = checking;
        if (stale && !r.has_focus() || self.recheck) && !checking {
            self.recheck = false;
            checking = true;
            events.push(PickerEvent::Check(spec.clone()));
        }
        if let Some((id, total)) = &self.download {
            ui.horizontal(|ui| {
                if ui.button("Cancel").clicked() {
                    events.push(PickerEvent::CancelDownload);
                }
                ui.add(egui::ProgressBar::new(super::fraction(self.done_bytes, *total)).text(format!(
                    "downloading {id}: {} of {}",
                    mb(self.done_bytes),
                    mb(*total)
                )));
            });
            return events;
        }
        super::error_line(ui, &self.error);
        let Some((checked, status)) = self.checked.clone() else {
            if checking {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("looking for the model…");
                });
            }
            return events;
        };
        match status {
            ModelStatus::Local(_) => {
                ui.label("Ready: a model folder.");
            }
            ModelStatus::NotUsable(why) => {
                super::error_text(ui, &format!("Not a model folder: {why}"));
                ui.label(
                    "A model folder holds config.json (a VideoMAE, TimeSformer or ViViT model) and \
                     model.safetensors or pytorch_model.bin: a run's best/ folder, or a model downloaded from the Hub.",
                );
            }
            ModelStatus::Cached(_) => {
                ui.label("Ready: downloaded (in the Hugging Face cache; works offline).");
            }
            ModelStatus::Downloadable { bytes } => {
                ui.horizontal(|ui| {
                    ui.label(format!("{checked} is on the Hub but not downloaded yet."));
                    if ui.button(format!("Download ({})", mb(bytes))).clicked() {
                        self.start_download(&checked, bytes, &mut events);
                    }
                });
            }
            ModelStatus::Unreachable(_) | ModelStatus::NotAModel => {
                self.first_run(ui, &checked, &status, training, &mut events);
            }
        }
        events
    }

    /// No usable model: say what to do.
    fn first_run(
        &mut self,
        ui: &mut egui::Ui,
        spec: &str,
        status: &ModelStatus,
        training: bool,
        events: &mut Vec<PickerEvent>,
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
                            events.push(PickerEvent::Choose(id.clone()));
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
                            events.push(PickerEvent::Choose(id.clone()));
                            self.start_download(id, *bytes, events);
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
                    "- or run the offline demo (Start here, \"Try the offline demo\"): it fine-tunes a tiny model \
                     in about a minute and fills this field with it."
                });
            }
            if ui.button("Look again").clicked() {
                self.recheck = true;
            }
        });
    }
}
