//! The five tabs. Each holds its inputs, its running job and its results.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use eframe::egui;
use serde::{Deserialize, Serialize};

use super::{Job, Settings};
use crate::dataset::presets::{Preset, TrainPreset, ValPreset};
use crate::dataset::{DatasetIndex, IndexOptions, Layout};
use crate::eval::EvalReport;
use crate::infer::VideoResult;
use crate::train::TrainEvent;
use crate::video::RgbFrame;

/// The tabs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tab {
    /// Open and inspect a dataset.
    Dataset,
    /// See the augmentations.
    Preview,
    /// Fine-tune.
    Train,
    /// Evaluate.
    Evaluate,
    /// Classify videos.
    Classify,
}

impl Tab {
    /// All tabs, in order.
    pub const ALL: [Tab; 5] = [Tab::Dataset, Tab::Preview, Tab::Train, Tab::Evaluate, Tab::Classify];

    /// The tab's title.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Dataset => "Dataset",
            Tab::Preview => "Augmentation Preview",
            Tab::Train => "Train",
            Tab::Evaluate => "Evaluate",
            Tab::Classify => "Classify",
        }
    }
}

fn textures(ctx: &egui::Context, name: &str, frames: &[RgbFrame]) -> Vec<egui::TextureHandle> {
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let img = egui::ColorImage::from_rgb([f.width as usize, f.height as usize], &f.data);
            ctx.load_texture(format!("{name}-{i}"), img, egui::TextureOptions::LINEAR)
        })
        .collect()
}

fn strip(ui: &mut egui::Ui, tex: &[egui::TextureHandle], height: f32) {
    ui.horizontal_wrapped(|ui| {
        for t in tex {
            let [w, h] = t.size();
            let size = egui::vec2(height * w as f32 / h.max(1) as f32, height);
            ui.add(egui::Image::new((t.id(), size)));
        }
    });
}

/// A labelled path field with a Browse… button (`key` tells the app's dialogs
/// apart) that fills it with the folder or the first file picked. Returns the
/// text field's response.
pub(super) fn path_field(
    ui: &mut egui::Ui,
    label: &str,
    value: &mut String,
    hint: &str,
    key: &str,
    pick: Pick,
) -> egui::Response {
    ui.horizontal(|ui| {
        let l = ui.label(label);
        let r = ui.add(egui::TextEdit::singleline(value).hint_text(hint).desired_width(420.0)).labelled_by(l.id);
        if let Some(p) = browse(ui, key, pick).into_iter().next() {
            *value = p.to_string_lossy().into_owned();
        }
        r
    })
    .inner
}

/// What a Browse… button picks.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Pick {
    Folder,
    Files,
}

/// A button that runs a file dialog on a worker thread (the UI goes on
/// drawing); on a later frame, returns what `dialog` picked and whether the
/// dialog seems never to have opened (no portal, no zenity). `key` tells the
/// app's buttons apart.
fn dialog_button(
    ui: &mut egui::Ui,
    key: &str,
    label: &str,
    enabled: bool,
    dialog: impl FnOnce() -> Vec<PathBuf> + Send + 'static,
) -> Option<(Vec<PathBuf>, bool)> {
    type Slot = std::sync::Arc<std::sync::Mutex<Option<(Vec<PathBuf>, bool)>>>;
    let id = egui::Id::NULL.with(("vidi-dialog", key));
    let slot: Slot = ui.data_mut(|d| d.get_temp_mut_or_default::<Slot>(id).clone());
    let pending = ui.data(|d| d.get_temp::<bool>(id.with("pending"))).unwrap_or(false);
    if ui.add_enabled(enabled && !pending, egui::Button::new(label)).clicked() {
        ui.data_mut(|d| d.insert_temp(id.with("pending"), true));
        let (slot, ctx) = (slot.clone(), ui.ctx().clone());
        let _ = std::thread::Builder::new().name("vidi-file-dialog".into()).spawn(move || {
            let t0 = std::time::Instant::now();
            let picked = dialog();
            // A dialog that "closed" at once most likely never opened.
            let never_opened = picked.is_empty() && t0.elapsed() < std::time::Duration::from_millis(400);
            if let Ok(mut s) = slot.lock() {
                *s = Some((picked, never_opened));
            }
            ctx.request_repaint();
        });
    }
    let done = slot.lock().ok().and_then(|mut s| s.take());
    if done.is_some() {
        ui.data_mut(|d| d.insert_temp(id.with("pending"), false));
    }
    done
}

/// A "Browse…" button for folders or video files; returns what was picked, on a later frame.
pub(super) fn browse(ui: &mut egui::Ui, key: &str, pick: Pick) -> Vec<PathBuf> {
    let hint_id = egui::Id::NULL.with(("vidi-dialog-hint", key));
    let done = dialog_button(ui, key, "Browse…", true, move || {
        let dialog = rfd::FileDialog::new();
        match pick {
            Pick::Folder => dialog.pick_folder().into_iter().collect(),
            Pick::Files => dialog
                .add_filter("videos", &VIDEO_EXTENSIONS)
                .add_filter("all files", &["*"])
                .pick_files()
                .unwrap_or_default(),
        }
    });
    if let Some((picked, never_opened)) = done {
        ui.data_mut(|d| d.insert_temp(hint_id, never_opened));
        return picked;
    }
    if ui.data(|d| d.get_temp::<bool>(hint_id)).unwrap_or(false) {
        ui.label(
            "No file dialog here (install xdg-desktop-portal-gtk or zenity): type the path, or drop it on the window.",
        );
    }
    Vec::new()
}

/// Video file name endings the dialogs offer.
const VIDEO_EXTENSIONS: [&str; 12] =
    ["mp4", "avi", "mkv", "webm", "mov", "m4v", "mpg", "mpeg", "ogv", "flv", "3gp", "wmv"];

/// A save button: asks where to save `name` (a save dialog on a worker thread); where no
/// dialog can open, saves into `fallback_dir`. Returns the path on a later frame.
pub(super) fn save_button(
    ui: &mut egui::Ui,
    label: &str,
    enabled: bool,
    name: &str,
    fallback_dir: &Path,
) -> Option<PathBuf> {
    let file = name.to_string();
    let (picked, never_opened) = dialog_button(ui, label, label, enabled, move || {
        rfd::FileDialog::new().set_file_name(file).save_file().into_iter().collect()
    })?;
    match picked.into_iter().next() {
        Some(p) => Some(p),
        None if never_opened => Some(fallback_dir.join(name)),
        None => None,
    }
}

/// A label and a number field named by it (for screen readers and tests).
fn number<T: egui::emath::Numeric>(ui: &mut egui::Ui, label: &str, v: &mut T, range: std::ops::RangeInclusive<T>) {
    let l = ui.label(label);
    ui.add(egui::DragValue::new(v).range(range)).labelled_by(l.id);
}

pub(super) fn error_line(ui: &mut egui::Ui, err: &Option<String>) {
    if let Some(e) = err {
        ui.colored_label(egui::Color32::from_rgb(200, 40, 40), e);
    }
}

// ---------------------------------------------------------------- Dataset

enum DatasetMsg {
    Progress(usize, usize),
    /// Download bytes (done, total), then extraction bytes.
    Download(&'static str, u64, u64),
    Downloaded(Result<PathBuf, String>),
    Index(Result<DatasetIndex, String>),
    Strip(PathBuf, Result<Vec<RgbFrame>, String>),
    Split(Result<PathBuf, String>),
}

/// The Dataset tab.
#[derive(Default)]
pub struct DatasetTab {
    /// Open the settings' folder on the next frame (a dropped folder, a command-line folder).
    pub request_open: bool,
    index: Option<DatasetIndex>,
    job: Option<Job<DatasetMsg>>,
    progress: (usize, usize),
    selected: Option<PathBuf>,
    strip: Vec<egui::TextureHandle>,
    error: Option<String>,
    /// The video player of the selected video.
    pub player: super::player::Player,
    download: Option<(&'static str, u64, u64)>,
}

impl DatasetTab {
    fn download(&mut self, ctx: &egui::Context, hub: crate::hub::HubSettings, out: PathBuf) {
        self.error = None;
        self.download = Some(("downloading", 0, 0));
        self.job = Some(Job::spawn("vidi-download-dataset", ctx, move |send, _| {
            let r = (|| {
                let archive = super::with_hub_progress(&|d, t| send(DatasetMsg::Download("downloading", d, t)), |p| {
                    crate::hub::download_dataset_file_with(
                        crate::hub::REFERENCE_DATASET,
                        crate::hub::REFERENCE_DATASET_FILE,
                        None,
                        Some(p),
                        &hub,
                    )
                })
                .map_err(|e| e.to_string())?;
                let name = crate::hub::REFERENCE_DATASET_FILE.trim_end_matches(".tar.gz").trim_end_matches(".tar");
                let existing = out.join(name);
                if existing.is_dir() {
                    // Extracted before: open it as it is.
                    return Ok(existing);
                }
                std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
                let tops = crate::hub::extract_archive(&archive, &out, &mut |d, t| {
                    send(DatasetMsg::Download("extracting", d, t))
                })
                .map_err(|e| e.to_string())?;
                tops.into_iter().find(|p| p.is_dir()).ok_or_else(|| "the archive held no folder".to_string())
            })();
            send(DatasetMsg::Downloaded(r));
        }));
    }

    fn open(&mut self, ctx: &egui::Context, dir: String) {
        self.error = None;
        self.job = Some(Job::spawn("vidi-index", ctx, move |send, _| {
            let mut progress = |d: usize, t: usize| send(DatasetMsg::Progress(d, t));
            let r = crate::dataset::index::index_folder_with_progress(
                Path::new(&dir),
                &IndexOptions { check_readable: true, threads: 2 },
                &mut progress,
            );
            send(DatasetMsg::Index(r.map_err(|e| e.to_string())));
        }));
    }

    fn select(&mut self, ctx: &egui::Context, video: PathBuf) {
        self.player.open(ctx, &video);
        self.selected = Some(video.clone());
        self.strip.clear();
        self.job = Some(Job::spawn("vidi-strip", ctx, move |send, _| {
            let r = crate::video::decode_uniform(&video, 8, &Default::default())
                .map(|(f, _)| f.into_iter().map(|f| small(&f, 120)).collect())
                .map_err(|e| e.to_string());
            send(DatasetMsg::Strip(video, r));
        }));
    }

    fn show(&mut self, ui: &mut egui::Ui, s: &mut Settings, hub: &crate::hub::HubSettings) {
        ui.heading("Dataset");
        ui.label("A folder of class folders: <dir>/{train,val,test}/<Class>/* or <dir>/<Class>/*. Drop a folder on the window, browse, or type its path.");
        let enter = path_field(ui, "Folder", &mut s.data_dir, "e.g. UCF101_subset", "Folder", Pick::Folder)
            .lost_focus()
            && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let idle = self.job.is_none();
        let mut open = false;
        ui.horizontal(|ui| {
            open = ui.add_enabled(idle, egui::Button::new("Open")).clicked();
            ui.label("or");
            let text = format!("Download the UCF101 subset (the guide's dataset) into {}", s.downloads);
            if ui.add_enabled(idle, egui::Button::new(text)).clicked() {
                self.download(ui.ctx(), hub.clone(), PathBuf::from(&s.downloads));
            }
        });
        if open || (enter && idle) || (idle && std::mem::take(&mut self.request_open)) {
            self.open(ui.ctx(), s.data_dir.clone());
        }
        if let Some((what, d, t)) = self.download {
            let f = if t > 0 { d as f32 / t as f32 } else { 0.0 };
            let mb = |b: u64| b as f64 / 1e6;
            ui.add(egui::ProgressBar::new(f).text(format!("{what} {:.1} of {:.1} MB", mb(d), mb(t))));
        } else if self.job.is_some() {
            let (d, t) = self.progress;
            ui.add(
                egui::ProgressBar::new(if t > 0 { d as f32 / t as f32 } else { 0.0 }).text(format!("reading {d}/{t}")),
            );
        }
        error_line(ui, &self.error);
        let Some(index) = &self.index else { return };
        ui.separator();
        ui.label(format!(
            "{} classes, {} videos ({:?} layout)",
            index.classes.len(),
            index.samples.len(),
            index.layout
        ));
        let splits: Vec<String> = index.counts.keys().cloned().collect();
        egui::Grid::new("class-counts").striped(true).show(ui, |ui| {
            ui.strong("class");
            for sp in &splits {
                ui.strong(sp);
            }
            ui.end_row();
            for c in &index.classes {
                ui.label(c);
                for sp in &splits {
                    ui.label(index.counts[sp].get(c).copied().unwrap_or(0).to_string());
                }
                ui.end_row();
            }
        });
        if !index.unreadable.is_empty() {
            ui.colored_label(
                egui::Color32::from_rgb(200, 120, 0),
                format!("{} unreadable files:", index.unreadable.len()),
            );
            for u in &index.unreadable {
                ui.label(format!("  {}: {}", u.path.display(), u.reason));
            }
        }
        if !index.leaking_groups.is_empty() {
            ui.colored_label(
                egui::Color32::from_rgb(200, 40, 40),
                format!("{} groups appear in more than one split (data leakage):", index.leaking_groups.len()),
            );
            for g in &index.leaking_groups {
                ui.label(format!("  {} in {}", g.group, g.splits.join(", ")));
            }
        }
        let mut split_clicked = false;
        if index.layout == Layout::Flat {
            split_clicked = ui.button("Split into train/val/test (group-aware, seed 0) →  <folder>_split").clicked();
        }
        ui.separator();
        ui.label("Videos (click one for its frame strip):");
        let mut clicked = None;
        egui::ScrollArea::vertical().id_salt("videos").max_height(180.0).show(ui, |ui| {
            for smp in &index.samples {
                let name = format!(
                    "{}  [{}{}]",
                    smp.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                    smp.split.as_deref().map(|s| format!("{s}/")).unwrap_or_default(),
                    smp.class
                );
                if ui.selectable_label(self.selected.as_ref() == Some(&smp.path), name).clicked() {
                    clicked = Some(smp.path.clone());
                }
            }
        });
        if let Some(v) = clicked {
            s.video = v.to_string_lossy().into_owned();
            self.select(ui.ctx(), v);
        }
        if split_clicked {
            let src = PathBuf::from(&s.data_dir);
            let out = PathBuf::from(format!("{}_split", s.data_dir.trim_end_matches('/')));
            self.job = Some(Job::spawn("vidi-split", ui.ctx(), move |send, _| {
                let r = crate::dataset::split_folder(&src, &out, &Default::default())
                    .map(|r| r.out)
                    .map_err(|e| e.to_string());
                send(DatasetMsg::Split(r));
            }));
        }
        if self.player.path().is_some() {
            self.player.show(ui, 270.0);
        }
        if !self.strip.is_empty() {
            ui.label("Frames sampled evenly over the whole video:");
            strip(ui, &self.strip, 90.0);
        }
    }

    fn poll(&mut self, ctx: &egui::Context, s: &mut Settings) {
        let Some(job) = self.job.as_mut() else { return };
        for m in job.poll() {
            match m {
                DatasetMsg::Progress(d, t) => self.progress = (d, t),
                DatasetMsg::Download(what, d, t) => self.download = Some((what, d, t)),
                DatasetMsg::Downloaded(r) => {
                    self.download = None;
                    match r {
                        Ok(dir) => {
                            s.data_dir = dir.to_string_lossy().into_owned();
                            self.request_open = true;
                        }
                        Err(e) => self.error = Some(e),
                    }
                }
                DatasetMsg::Index(r) => match r {
                    Ok(i) => {
                        self.index = Some(i);
                        self.strip.clear();
                    }
                    Err(e) => self.error = Some(e),
                },
                // A strip for a video no longer selected is dropped.
                DatasetMsg::Strip(v, _) if self.selected.as_ref() != Some(&v) => {}
                DatasetMsg::Strip(_, r) => match r {
                    Ok(f) => self.strip = textures(ctx, "strip", &f),
                    Err(e) => self.error = Some(e),
                },
                DatasetMsg::Split(r) => match r {
                    Ok(out) => {
                        s.data_dir = out.to_string_lossy().into_owned();
                        self.request_open = true;
                    }
                    Err(e) => self.error = Some(e),
                },
            }
        }
        if job.is_done() {
            self.job = None;
        }
    }
}

/// A frame scaled to `height` pixels high (for strips).
pub(super) fn small(f: &RgbFrame, height: u32) -> RgbFrame {
    if f.height <= height {
        return f.clone();
    }
    let w = (f.width as u64 * height as u64 / f.height as u64).max(1) as usize;
    crate::dataset::transforms::pil_resize_bilinear(f, w, height as usize)
}

// ---------------------------------------------------------------- Preview

/// The Augmentation Preview tab.
pub struct PreviewTab {
    from_model: Option<Job<Result<(String, TrainPreset), String>>>,
    train: bool,
    p: TrainPreset,
    seed: u64,
    job: Option<Job<Result<crate::preview::PreviewClip, String>>>,
    clip: Option<crate::preview::PreviewClip>,
    original: Vec<egui::TextureHandle>,
    augmented: Vec<egui::TextureHandle>,
    error: Option<String>,
    saved: Option<String>,
}

impl Default for PreviewTab {
    fn default() -> Self {
        PreviewTab {
            from_model: None,
            train: true,
            p: TrainPreset::default(),
            seed: 0,
            job: None,
            clip: None,
            original: Vec::new(),
            augmented: Vec::new(),
            error: None,
            saved: None,
        }
    }
}

impl PreviewTab {
    fn preset(&self) -> Preset {
        let p = &self.p;
        if self.train {
            Preset::Train(p.clone())
        } else {
            Preset::Val(ValPreset {
                num_frames: p.num_frames,
                sample_rate: p.sample_rate,
                fps: p.fps,
                mean: p.mean,
                std: p.std,
                resize: (p.crop, p.crop),
                antialias: true,
            })
        }
    }

    fn run(&mut self, ctx: &egui::Context, video: String) {
        let (preset, seed) = (self.preset(), self.seed);
        self.error = None;
        self.job = Some(Job::spawn("vidi-preview", ctx, move |send, _| {
            send(crate::preview::preview_clip(Path::new(&video), &preset, seed).map_err(|e| e.to_string()));
        }));
    }

    /// Reads the frames, size and mean/std of the model `spec` (a folder or a cached Hub model).
    fn match_model(&mut self, ctx: &egui::Context, spec: String, hub: crate::hub::HubSettings) {
        self.from_model = Some(Job::spawn("vidi-preview-model", ctx, move |send, _| {
            use crate::hub::ModelStatus;
            let r = match crate::hub::model_statuses(&[&spec], &hub).pop() {
                Some(ModelStatus::Local(dir) | ModelStatus::Cached(dir)) => (|| {
                    let config = crate::model::ModelConfig::from_dir(&dir).map_err(|e| e.to_string())?;
                    let processor =
                        crate::model::config::read_processor(&dir, config.arch).map_err(|e| e.to_string())?;
                    let preset = crate::train::train_preset_for(&config, &processor, &Default::default());
                    Ok((spec.clone(), preset))
                })(),
                _ => Err(format!("{spec} is not a model folder or a downloaded model (see the Classify tab)")),
            };
            send(r);
        }));
    }

    fn show(&mut self, ui: &mut egui::Ui, s: &mut Settings, hub: &crate::hub::HubSettings) {
        ui.heading("Augmentation Preview");
        ui.label("What the model will see: one clip sampled and transformed exactly as in training (train) or evaluation (val).");
        path_field(
            ui,
            "Video",
            &mut s.video,
            "pick one on the Dataset tab, or type a path",
            "preview-video",
            Pick::Files,
        );
        ui.horizontal(|ui| {
            ui.radio_value(&mut self.train, true, "train preset");
            ui.radio_value(&mut self.train, false, "val preset");
            number(ui, "seed", &mut self.seed, 0..=u64::MAX);
        });
        let p = &mut self.p;
        egui::Grid::new("preview-params").show(ui, |ui| {
            number(ui, "frames", &mut p.num_frames, 1..=64);
            number(ui, "sample rate", &mut p.sample_rate, 1..=16);
            ui.end_row();
            number(ui, "short side min", &mut p.min_short_side, 8..=1024);
            number(ui, "short side max", &mut p.max_short_side, 8..=1024);
            ui.end_row();
            number(ui, "crop size", &mut p.crop, 8..=1024);
            let l = ui.label("flip p");
            ui.add(egui::Slider::new(&mut p.flip_p, 0.0..=1.0)).labelled_by(l.id);
            ui.end_row();
        });
        if p.max_short_side < p.min_short_side {
            p.max_short_side = p.min_short_side;
        }
        let (mean, std) = (p.mean, p.std);
        ui.horizontal(|ui| {
            let f = |v: [f32; 3]| format!("[{:.3}, {:.3}, {:.3}]", v[0], v[1], v[2]);
            ui.label(format!("normalise: mean {}  std {}", f(mean), f(std)));
            let busy = self.from_model.is_some();
            if ui.add_enabled(!busy, egui::Button::new(format!("Use the settings of {}", s.model))).clicked() {
                self.match_model(ui.ctx(), s.model.clone(), hub.clone());
            }
        });
        ui.horizontal(|ui| {
            if ui.button("Preview").clicked() {
                self.run(ui.ctx(), s.video.clone());
            }
            if ui.button("New sample").clicked() {
                self.seed += 1;
                self.run(ui.ctx(), s.video.clone());
            }
            let name = format!("vidi-preview-seed{}.gif", self.seed);
            if let Some(path) = save_button(ui, "Export GIF", self.clip.is_some(), &name, Path::new(&s.downloads)) {
                if let Some(c) = &self.clip {
                    let written = create_parent(&path)
                        .map_err(|e| format!("{}: {e}", path.display()))
                        .and_then(|()| crate::preview::write_gif(&c.augmented, 250, &path).map_err(|e| e.to_string()));
                    self.saved = Some(match written {
                        Ok(()) => format!("saved {}", path.display()),
                        Err(e) => e,
                    });
                }
            }
        });
        if self.job.is_some() {
            ui.spinner();
        }
        error_line(ui, &self.error);
        if let Some(m) = &self.saved {
            ui.label(m);
        }
        if let Some(c) = &self.clip {
            ui.label(format!("clip {:.2}s – {:.2}s of {:.2}s", c.window.start_secs, c.window.end_secs, c.duration_s));
            let (rect, _) = ui.allocate_exact_size(egui::vec2(500.0, 10.0), egui::Sense::hover());
            let painter = ui.painter();
            painter.rect_filled(rect, 2.0, egui::Color32::from_gray(70));
            let d = c.duration_s.max(1e-6) as f32;
            let x0 = rect.left() + rect.width() * (c.window.start_secs as f32 / d).clamp(0.0, 1.0);
            let x1 = rect.left() + rect.width() * (c.window.end_secs as f32 / d).clamp(0.0, 1.0);
            painter.rect_filled(
                egui::Rect::from_x_y_ranges(x0..=x1.max(x0 + 2.0), rect.y_range()),
                2.0,
                egui::Color32::from_rgb(80, 160, 255),
            );
            ui.label("Sampled frames:");
            strip(ui, &self.original, 80.0);
            ui.label("Augmented frames (un-normalised):");
            strip(ui, &self.augmented, 80.0);
        }
    }

    fn poll(&mut self, ctx: &egui::Context) {
        if let Some(job) = self.from_model.as_mut() {
            for r in job.poll() {
                match r {
                    Ok((spec, preset)) => {
                        self.p = TrainPreset { flip_p: self.p.flip_p, ..preset };
                        self.saved = Some(format!("frames, sizes and mean/std of {spec}"));
                    }
                    Err(e) => self.error = Some(e),
                }
            }
            if job.is_done() {
                self.from_model = None;
            }
        }
        let Some(job) = self.job.as_mut() else { return };
        for r in job.poll() {
            match r {
                Ok(c) => {
                    let orig: Vec<RgbFrame> = c.original.iter().map(|f| small(f, 160)).collect();
                    self.original = textures(ctx, "orig", &orig);
                    self.augmented = textures(ctx, "aug", &c.augmented);
                    self.clip = Some(c);
                }
                Err(e) => self.error = Some(e),
            }
        }
        if job.is_done() {
            self.job = None;
        }
    }
}

// ---------------------------------------------------------------- Share

enum ShareMsg {
    User(Result<String, String>),
    Pushed(Result<crate::share::PushReport, String>),
}

/// "Share to Hub" for a model folder: the login state, a repo name, a push.
#[derive(Default)]
pub struct ShareBox {
    user: Option<Result<String, String>>,
    repo: String,
    private: bool,
    job: Option<Job<ShareMsg>>,
    result: Option<Result<String, String>>,
}

impl ShareBox {
    fn show(&mut self, ui: &mut egui::Ui, model_dir: &Path, hub: &crate::hub::HubSettings) {
        if !model_dir.join("config.json").is_file() {
            return;
        }
        ui.separator();
        ui.strong("Share to Hub");
        if self.user.is_none() && self.job.is_none() {
            let hub = hub.clone();
            self.job = Some(Job::spawn("vidi-whoami", ui.ctx(), move |send, _| {
                send(ShareMsg::User(crate::share::whoami_on(&hub).map_err(|e| e.to_string())))
            }));
        }
        match &self.user {
            Some(Ok(u)) => {
                ui.label(format!("logged in as {u}"));
                if self.repo.is_empty() {
                    let name = model_dir
                        .parent()
                        .and_then(|p| p.file_name())
                        .or(model_dir.file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "my-video-classifier".into());
                    self.repo = format!("{u}/{name}");
                }
            }
            Some(Err(e)) => {
                ui.label(format!("{e} — in a terminal: vidi login"));
            }
            None => {
                ui.spinner();
            }
        }
        ui.horizontal(|ui| {
            let l = ui.label("repo");
            ui.add(egui::TextEdit::singleline(&mut self.repo).hint_text("user/name").desired_width(300.0))
                .labelled_by(l.id);
            ui.checkbox(&mut self.private, "private");
            let can = self.job.is_none() && matches!(self.user, Some(Ok(_))) && self.repo.contains('/');
            if ui.add_enabled(can, egui::Button::new("Share to Hub")).clicked() {
                let (dir, repo) = (model_dir.to_path_buf(), self.repo.clone());
                let opts = crate::share::PushOptions { private: self.private, ..Default::default() };
                let hub = hub.clone();
                self.job = Some(Job::spawn("vidi-push", ui.ctx(), move |send, _| {
                    let r = crate::share::push_on(&hub, &dir, &repo, &opts, None);
                    send(ShareMsg::Pushed(r.map_err(|e| e.to_string())))
                }));
            }
        });
        if self.job.is_some() {
            ui.spinner();
        }
        match &self.result {
            Some(Ok(m)) => {
                ui.label(m);
            }
            Some(Err(e)) => {
                ui.colored_label(egui::Color32::from_rgb(200, 40, 40), e);
            }
            None => {}
        }
    }

    fn poll(&mut self) {
        let Some(job) = self.job.as_mut() else { return };
        for m in job.poll() {
            match m {
                ShareMsg::User(u) => self.user = Some(u),
                ShareMsg::Pushed(r) => {
                    self.result =
                        Some(r.map(|r| format!("pushed to {} (use it: vidi classify --model {})", r.url, r.repo)))
                }
            }
        }
        if job.is_done() {
            self.job = None;
        }
    }
}

// ---------------------------------------------------------------- Train

enum TrainMsg {
    Event(TrainEvent),
    Failed(String),
}

/// The Train tab.
#[derive(Default)]
pub struct TrainTab {
    model: super::models::ModelPanel,
    job: Option<Job<TrainMsg>>,
    share: ShareBox,
    loss: Vec<[f64; 2]>,
    lr: Vec<[f64; 2]>,
    val: Vec<[f64; 2]>,
    log: Vec<String>,
    step: (u64, u64),
    rate: (f64, f64),
    error: Option<String>,
}

impl TrainTab {
    fn start(
        &mut self,
        ctx: &egui::Context,
        s: &Settings,
        resume: bool,
        demo: bool,
        compute: &crate::backend::Compute,
    ) {
        let compute = compute.clone();
        *self = TrainTab { model: std::mem::take(&mut self.model), ..Default::default() };
        let out = PathBuf::from(&s.run_dir);
        let cfg = crate::train::TrainConfig {
            data: PathBuf::from(&s.data_dir),
            model: s.model.clone(),
            epochs: s.epochs,
            batch_size: s.batch_size,
            grad_accum: s.grad_accum,
            lr: s.lr,
            seed: s.seed,
            device: if compute.is_gpu { crate::backend::DeviceChoice::Gpu } else { crate::backend::DeviceChoice::Cpu },
            ..Default::default()
        };
        self.log.push(format!("run folder: {}", out.display()));
        self.job = Some(Job::spawn("vidi-train", ctx, move |send, cancel| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<TrainEvent>(64);
            std::thread::scope(|sc| {
                sc.spawn(|| {
                    for e in rx {
                        send(TrainMsg::Event(e));
                    }
                });
                let r = if demo {
                    crate::demo::run(&out, &Default::default(), &mut |_| {}, &tx, cancel)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                } else {
                    crate::train::train_on((!resume).then_some(&cfg), &out, &tx, cancel, Some(&compute))
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                };
                drop(tx);
                if let Err(e) = r {
                    send(TrainMsg::Failed(e));
                }
            });
        }));
    }

    fn show(
        &mut self,
        ui: &mut egui::Ui,
        s: &mut Settings,
        compute: &crate::backend::Compute,
        hub: &crate::hub::HubSettings,
    ) {
        ui.heading("Train");
        path_field(ui, "Dataset", &mut s.data_dir, "a folder with train/ and val/", "Dataset", Pick::Folder);
        self.model.show(ui, s, hub, true);
        ui.horizontal(|ui| {
            ui.label("suggestions:");
            for id in
                ["MCG-NJU/videomae-base", "facebook/timesformer-base-finetuned-k400", "google/vivit-b-16x2-kinetics400"]
            {
                if ui.small_button(id).clicked() {
                    s.model = id.into();
                }
            }
        });
        path_field(ui, "Run folder", &mut s.run_dir, "where checkpoints and best/ go", "Run folder", Pick::Folder);
        egui::Grid::new("train-params").show(ui, |ui| {
            number(ui, "epochs", &mut s.epochs, 1..=1000);
            ui.label("passes over the train split");
            ui.end_row();
            number(ui, "batch size", &mut s.batch_size, 1..=256);
            ui.label("clips per forward pass");
            ui.end_row();
            number(ui, "gradient accumulation", &mut s.grad_accum, 1..=64);
            ui.label("passes summed per step (effective batch = batch x this)");
            ui.end_row();
            let l = ui.label("learning rate");
            ui.add(egui::DragValue::new(&mut s.lr).speed(1e-6).range(1e-7..=1.0)).labelled_by(l.id);
            ui.label("peak of the warm-up/decay schedule (5e-5 fine-tunes)");
            ui.end_row();
            number(ui, "seed", &mut s.seed, 0..=u64::MAX);
            ui.label("same seed, same run");
            ui.end_row();
        });
        let running = self.job.is_some();
        ui.horizontal(|ui| {
            if ui.add_enabled(!running, egui::Button::new("Start")).clicked() {
                self.start(ui.ctx(), s, false, false, compute);
            }
            if ui.add_enabled(!running, egui::Button::new("Resume")).clicked() {
                self.start(ui.ctx(), s, true, false, compute);
            }
            if ui.add_enabled(running, egui::Button::new("Stop")).clicked() {
                if let Some(j) = &self.job {
                    j.stop();
                    self.log.push("stopping after this step…".into());
                }
            }
            if ui.add_enabled(!running, egui::Button::new("Run the offline demo")).clicked() {
                self.start(ui.ctx(), s, false, true, compute);
            }
        });
        error_line(ui, &self.error);
        let (step, total) = self.step;
        if total > 0 {
            ui.add(
                egui::ProgressBar::new(step as f32 / total as f32)
                    .text(format!("step {step}/{total}  {:.1} clips/s  ETA {:.0} s", self.rate.0, self.rate.1)),
            );
        }
        use egui_plot::{Legend, Line, Plot, Points};
        ui.columns(2, |cols| {
            Plot::new("loss").height(180.0).legend(Legend::default()).show(&mut cols[0], |p| {
                p.line(Line::new("train loss", self.loss.clone()));
            });
            Plot::new("lr-acc").height(180.0).legend(Legend::default()).show(&mut cols[1], |p| {
                let peak = self.lr.iter().map(|v| v[1]).fold(0.0, f64::max).max(1e-12);
                p.line(Line::new(
                    "lr (scaled to peak)",
                    self.lr.iter().map(|v| [v[0], v[1] / peak]).collect::<Vec<_>>(),
                ));
                p.points(Points::new("val accuracy", self.val.clone()).radius(4.0));
            });
        });
        ui.label("Log:");
        egui::ScrollArea::vertical().id_salt("train-log").max_height(160.0).stick_to_bottom(true).show(ui, |ui| {
            for l in &self.log {
                ui.monospace(l);
            }
        });
        if !running {
            self.share.show(ui, &Path::new(&s.run_dir).join("best"), hub);
        }
    }

    fn poll(&mut self) {
        self.share.poll();
        let Some(job) = self.job.as_mut() else { return };
        for m in job.poll() {
            match m {
                TrainMsg::Failed(e) => self.error = Some(e),
                TrainMsg::Event(e) => match e {
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
                    TrainEvent::Log { step, loss, lr, .. } => {
                        self.log.push(format!("step {step}: loss {loss:.4} lr {lr:.2e}"))
                    }
                    TrainEvent::Eval { step, epoch, accuracy, .. } => {
                        self.val.push([step as f64, accuracy]);
                        self.log.push(format!("epoch {epoch}: val accuracy {:.1}%", accuracy * 100.0));
                    }
                    TrainEvent::Checkpoint { path } => self.log.push(format!("saved {}", path.display())),
                    TrainEvent::Skipped { path, reason } => {
                        self.log.push(format!("skipped {}: {reason}", path.display()))
                    }
                    TrainEvent::Done(sm) => self.log.push(if sm.stopped {
                        format!("stopped at step {}: Resume goes on from here", sm.steps)
                    } else {
                        format!(
                            "done: best val accuracy {}; model in {}",
                            sm.best_accuracy.map(|a| format!("{:.1}%", a * 100.0)).unwrap_or("-".into()),
                            sm.best_dir.map(|d| d.display().to_string()).unwrap_or_default()
                        )
                    }),
                },
            }
        }
        if job.is_done() {
            self.job = None;
        }
    }
}

// ---------------------------------------------------------------- Evaluate

/// The Evaluate tab.
pub struct EvaluateTab {
    model: String,
    split: String,
    clips: usize,
    crops: usize,
    job: Option<Job<Result<EvalReport, String>>>,
    report: Option<EvalReport>,
    cell: Option<(usize, usize)>,
    error: Option<String>,
    share: ShareBox,
    player: super::player::Player,
}

impl Default for EvaluateTab {
    fn default() -> Self {
        EvaluateTab {
            model: String::new(),
            split: "test".into(),
            clips: 1,
            crops: 1,
            job: None,
            report: None,
            cell: None,
            error: None,
            share: ShareBox::default(),
            player: Default::default(),
        }
    }
}

fn eval_job(
    model: String,
    data: String,
    split: String,
    opts: crate::eval::EvalOptions,
    device: burn::tensor::Device,
    cancel: &AtomicBool,
) -> Result<EvalReport, String> {
    let dir = crate::hub::resolve_model(&model, None, None).map_err(|e| e.to_string())?;
    let (m, _) = crate::model::VideoModel::load(&dir, &Default::default(), &device).map_err(|e| e.to_string())?;
    let index = crate::dataset::index_folder(Path::new(&data), &IndexOptions { check_readable: true, threads: 2 })
        .map_err(|e| e.to_string())?;
    let items = crate::eval::split_items(&index, &split, &m.labels)?;
    crate::eval::evaluate(&m, &items, &opts, &mut |_, _| {}, cancel).map_err(|e| e.to_string())
}

impl EvaluateTab {
    fn show(
        &mut self,
        ui: &mut egui::Ui,
        s: &mut Settings,
        device: &burn::tensor::Device,
        hub: &crate::hub::HubSettings,
    ) {
        ui.heading("Evaluate");
        if self.model.is_empty() {
            self.model = format!("{}/best", s.run_dir.trim_end_matches('/'));
        }
        path_field(ui, "Model", &mut self.model, "a model folder (e.g. RUN/best) or Hub id", "Model", Pick::Folder);
        path_field(ui, "Dataset", &mut s.data_dir, "split layout", "Dataset", Pick::Folder);
        ui.horizontal(|ui| {
            let l = ui.label("split");
            ui.text_edit_singleline(&mut self.split).labelled_by(l.id);
            number(ui, "clips", &mut self.clips, 1..=10);
            number(ui, "crops", &mut self.crops, 1..=3);
        });
        if ui.add_enabled(self.job.is_none(), egui::Button::new("Run evaluation")).clicked() {
            let (m, d, sp) = (self.model.clone(), s.data_dir.clone(), self.split.clone());
            let opts = crate::eval::EvalOptions { clips: self.clips, crops: self.crops, ..Default::default() };
            self.error = None;
            let device = device.clone();
            self.job = Some(Job::spawn("vidi-eval", ui.ctx(), move |send, cancel| {
                send(eval_job(m, d, sp, opts, device, cancel))
            }));
        }
        if self.job.is_some() {
            ui.spinner();
        }
        error_line(ui, &self.error);
        self.share.show(ui, &PathBuf::from(&self.model), hub);
        let Some(r) = &self.report else { return };
        ui.separator();
        ui.label(format!(
            "accuracy {:.2}%   top-5 {:.2}%   ({} videos, {} clip(s) x {} crop(s))",
            r.accuracy * 100.0,
            r.top5_accuracy * 100.0,
            r.videos,
            r.views[0],
            r.views[1]
        ));
        egui::Grid::new("per-class").striped(true).show(ui, |ui| {
            for h in ["class", "precision", "recall", "F1", "videos"] {
                ui.strong(h);
            }
            ui.end_row();
            for c in &r.per_class {
                ui.label(&c.label);
                ui.label(format!("{:.3}", c.precision));
                ui.label(format!("{:.3}", c.recall));
                ui.label(format!("{:.3}", c.f1));
                ui.label(c.support.to_string());
                ui.end_row();
            }
        });
        ui.label("Confusion matrix (rows: true, columns: predicted) — click a cell for its videos:");
        egui::Grid::new("confusion").spacing([2.0, 2.0]).show(ui, |ui| {
            ui.label("");
            for j in 0..r.labels.len() {
                ui.label(j.to_string());
            }
            ui.end_row();
            for (i, row) in r.confusion.iter().enumerate() {
                ui.label(format!("{} ({i})", r.labels[i]));
                let total: usize = row.iter().sum::<usize>().max(1);
                for (j, &c) in row.iter().enumerate() {
                    let t = c as f32 / total as f32;
                    let [r, g, b] = crate::heatmap::shade(t);
                    let fill = egui::Color32::from_rgb(r, g, b);
                    let text = egui::RichText::new(c.to_string()).color(if t > 0.5 {
                        egui::Color32::WHITE
                    } else {
                        egui::Color32::BLACK
                    });
                    if ui.add(egui::Button::new(text).fill(fill).min_size(egui::vec2(34.0, 24.0))).clicked() {
                        self.cell = Some((i, j));
                    }
                }
                ui.end_row();
            }
        });
        if let Some((i, j)) = self.cell {
            ui.label(format!("true {} → predicted {} (click one to play it):", r.labels[i], r.labels[j]));
            for o in r.outcomes.iter().filter(|o| o.label == r.labels[i] && o.predicted == r.labels[j]) {
                let top = o.top3.iter().map(|p| format!("{} {:.2}", p.label, p.score)).collect::<Vec<_>>().join(", ");
                if ui.link(format!("{}   ({top})", o.video.display())).clicked() {
                    s.video = o.video.to_string_lossy().into_owned();
                    self.player.open(ui.ctx(), &o.video);
                }
            }
            if self.player.path().is_some() {
                self.player.show(ui, 240.0);
            }
        }
    }

    fn poll(&mut self) {
        self.share.poll();
        let Some(job) = self.job.as_mut() else { return };
        for r in job.poll() {
            match r {
                Ok(rep) => self.report = Some(rep),
                Err(e) => self.error = Some(e),
            }
        }
        if job.is_done() {
            self.job = None;
        }
    }
}

// ---------------------------------------------------------------- Classify

/// The Classify tab.
#[derive(Default)]
pub struct ClassifyTab {
    /// Queued videos.
    pub files: Vec<PathBuf>,
    model: super::models::ModelPanel,
    player: super::player::Player,
    pending_play: Option<PathBuf>,
    add: String,
    job: Option<Job<Result<Vec<VideoResult>, String>>>,
    results: Vec<VideoResult>,
    error: Option<String>,
    copied: Option<String>,
}

impl ClassifyTab {
    fn show(
        &mut self,
        ui: &mut egui::Ui,
        s: &mut Settings,
        device: &burn::tensor::Device,
        hub: &crate::hub::HubSettings,
    ) {
        ui.heading("Classify");
        ui.label("Drop video files on the window, browse, or add a path.");
        self.model.show(ui, s, hub, false);
        ui.horizontal(|ui| {
            let l = ui.label("Video");
            ui.add(egui::TextEdit::singleline(&mut self.add).hint_text("video path").desired_width(420.0))
                .labelled_by(l.id);
            if ui.button("Add").clicked() && !self.add.trim().is_empty() {
                self.files.push(PathBuf::from(self.add.trim()));
                self.add.clear();
            }
            self.files.extend(browse(ui, "videos", Pick::Files));
            if ui.button("Clear").clicked() {
                self.files.clear();
                self.results.clear();
            }
        });
        for f in &self.files {
            ui.label(f.display().to_string());
        }
        let can = self.job.is_none() && !self.files.is_empty() && !self.model.downloading();
        if ui.add_enabled(can, egui::Button::new("Run classification")).clicked() {
            let (model, files, device) = (s.model.clone(), self.files.clone(), device.clone());
            self.error = None;
            let hub = hub.clone();
            self.job = Some(Job::spawn("vidi-classify", ui.ctx(), move |send, _| {
                let r = (|| {
                    let dir = crate::hub::resolve_model_with(&model, None, None, &hub).map_err(|e| e.to_string())?;
                    let (m, _) = crate::model::VideoModel::load(&dir, &Default::default(), &device)
                        .map_err(|e| e.to_string())?;
                    Ok(crate::infer::classify(&m, &files, &Default::default(), &mut |_, _| {}))
                })();
                send(r);
            }));
        }
        if self.job.is_some() {
            ui.spinner();
        }
        error_line(ui, &self.error);
        if !self.results.is_empty() {
            ui.horizontal(|ui| {
                if ui.button("Copy JSON").clicked() {
                    let json = serde_json::to_string_pretty(&self.results).unwrap_or_default();
                    ui.ctx().copy_text(json);
                    self.copied = Some("copied".into());
                }
                let dir = Path::new(&s.downloads);
                if let Some(path) = save_button(ui, "Export CSV", true, "vidi-classify.csv", dir) {
                    self.copied = Some(save_text(&path, &results_csv(&self.results)));
                }
                if let Some(path) = save_button(ui, "Export JSON", true, "vidi-classify.json", dir) {
                    let json = serde_json::to_string_pretty(&self.results).unwrap_or_default();
                    self.copied = Some(save_text(&path, &json));
                }
            });
            if let Some(c) = &self.copied {
                ui.label(c);
            }
        }
        let mut play = self.pending_play.take();
        let playing = self.player.path().map(Path::to_path_buf);
        for r in &self.results {
            ui.separator();
            let (VideoResult::Ok { video, .. } | VideoResult::Err { video, .. }) = r;
            ui.horizontal_top(|ui| {
                ui.vertical(|ui| {
                    let name = video.display().to_string();
                    if ui
                        .selectable_label(playing.as_ref() == Some(video), egui::RichText::new(name).strong())
                        .clicked()
                    {
                        play = Some(video.clone());
                    }
                    match r {
                        VideoResult::Ok { predictions, .. } => {
                            for p in predictions {
                                ui.add(
                                    egui::ProgressBar::new(p.score)
                                        .text(format!("{}  {:.3}", p.label, p.score))
                                        .desired_width(400.0),
                                );
                            }
                        }
                        VideoResult::Err { error, .. } => {
                            ui.colored_label(egui::Color32::from_rgb(200, 40, 40), error);
                        }
                    }
                });
                // The clip plays beside its labels.
                if playing.as_ref() == Some(video) {
                    ui.vertical(|ui| self.player.show(ui, 180.0));
                }
            });
        }
        if let Some(v) = play {
            self.player.open(ui.ctx(), &v);
        }
    }

    fn poll(&mut self) {
        let Some(job) = self.job.as_mut() else { return };
        for r in job.poll() {
            match r {
                Ok(v) => {
                    self.results = v;
                    // The first clip starts playing beside its labels.
                    if let Some(VideoResult::Ok { video, .. } | VideoResult::Err { video, .. }) = self.results.first() {
                        self.pending_play = Some(video.clone());
                    }
                }
                Err(e) => self.error = Some(e),
            }
        }
        if job.is_done() {
            self.job = None;
        }
    }
}

/// The results as CSV: one row per video and rank.
fn results_csv(results: &[VideoResult]) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut csv = String::from("video,rank,label,score,error\n");
    for r in results {
        match r {
            VideoResult::Ok { video, predictions } => {
                for (k, p) in predictions.iter().enumerate() {
                    csv.push_str(&format!("{},{},{},{},\n", q(&video.to_string_lossy()), k + 1, q(&p.label), p.score));
                }
            }
            VideoResult::Err { video, error } => {
                csv.push_str(&format!("{},,,,{}\n", q(&video.to_string_lossy()), q(error)));
            }
        }
    }
    csv
}

/// Creates the folder `path` will go in (the fallback export folder may not exist yet).
fn create_parent(path: &Path) -> std::io::Result<()> {
    path.parent().filter(|p| !p.as_os_str().is_empty()).map_or(Ok(()), std::fs::create_dir_all)
}

/// Writes `text` to `path` (atomically; its folder is created) and says what happened.
fn save_text(path: &Path, text: &str) -> String {
    match create_parent(path).and_then(|()| crate::util::write_atomic(path, text.as_bytes())) {
        Ok(()) => format!("wrote {}", path.display()),
        Err(e) => format!("{}: {e}", path.display()),
    }
}

// ---------------------------------------------------------------- all tabs

/// The state of every tab (kept when switching tabs: jobs go on).
#[derive(Default)]
pub struct TabsState {
    /// Dataset.
    pub dataset: DatasetTab,
    preview: PreviewTab,
    train: TrainTab,
    evaluate: EvaluateTab,
    /// Classify.
    pub classify: ClassifyTab,
}

impl TabsState {
    /// Fresh tabs.
    pub fn new(_s: &Settings) -> TabsState {
        TabsState::default()
    }

    /// Draws `tab`.
    pub fn show(
        &mut self,
        tab: Tab,
        ui: &mut egui::Ui,
        s: &mut Settings,
        compute: &crate::backend::Compute,
        hub: &crate::hub::HubSettings,
    ) {
        match tab {
            Tab::Dataset => self.dataset.show(ui, s, hub),
            Tab::Preview => self.preview.show(ui, s, hub),
            Tab::Train => self.train.show(ui, s, compute, hub),
            Tab::Evaluate => self.evaluate.show(ui, s, &compute.device, hub),
            Tab::Classify => self.classify.show(ui, s, &compute.device, hub),
        }
    }

    /// Takes what the jobs sent.
    pub fn poll(&mut self, ctx: &egui::Context, s: &mut Settings) {
        self.dataset.poll(ctx, s);
        self.train.model.poll(s);
        self.classify.model.poll(s);
        self.preview.poll(ctx);
        self.train.poll();
        self.evaluate.poll();
        self.classify.poll();
    }

    /// Whether any job runs.
    pub fn busy(&self) -> bool {
        self.train.model.busy()
            || self.classify.model.busy()
            || self.dataset.job.is_some()
            || self.dataset.request_open
            || self.preview.job.is_some()
            || self.preview.from_model.is_some()
            || self.train.job.is_some()
            || self.evaluate.job.is_some()
            || self.classify.job.is_some()
    }

    /// One line for the status bar.
    pub fn status(&self) -> String {
        let (step, total) = self.train.step;
        if self.train.job.is_some() {
            format!("training: step {step}/{total}")
        } else if self.busy() {
            "working…".into()
        } else {
            "ready".into()
        }
    }
}
