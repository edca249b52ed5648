//! The Dataset tab: open a folder of class folders (or download the guide's
//! dataset), see its classes and splits, split a flat one, and look at a video.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use eframe::egui;

use super::command::{Command, CommandSender, Setting};
use super::parts::VideoPlayer;
use super::{Env, Tab};
use crate::app::jobs::{JobKey, Jobs};
use crate::app::widgets::files::{path_field, pick_button, Pick};
use crate::app::widgets::split_dialog::SplitDialog;
use crate::app::widgets::{error_line, fraction, frames, small, warning_text};
use crate::app::DataLists;
use crate::dataset::{DataSource, DatasetIndex, IndexOptions, Layout};
use crate::video::{DecodeOptions, FrameBound, RgbFrame};

/// The Dataset tab.
pub struct DatasetTab {
    index: Option<DatasetIndex>,
    /// Reading a folder: (videos read, videos).
    index_job: JobKey<(usize, usize), Result<DatasetIndex, String>>,
    progress: (usize, usize),
    /// Downloading the guide's dataset: what is happening, bytes done and bytes.
    download_job: JobKey<(&'static str, u64, u64), Result<PathBuf, String>>,
    download: Option<(&'static str, u64, u64)>,
    split_job: JobKey<(), Result<(PathBuf, String), String>>,
    split_dialog: SplitDialog,
    /// What the last split wrote, in words.
    split_done: Option<String>,
    strip_job: JobKey<(), (PathBuf, Result<Vec<RgbFrame>, String>)>,
    /// A dataset source to read once no job of this tab runs.
    pending_open: Option<DataSource>,
    /// The source `index` was read from (or is being read from).
    index_of: Option<DataSource>,
    selected: Option<PathBuf>,
    strip: Vec<egui::TextureHandle>,
    error: Option<String>,
    /// The video player of the selected video.
    player: VideoPlayer,
}

impl Default for DatasetTab {
    fn default() -> Self {
        DatasetTab {
            index: None,
            index_job: JobKey::new("vidi-index"),
            progress: (0, 0),
            download_job: JobKey::new("vidi-download-dataset"),
            download: None,
            split_job: JobKey::new("vidi-split"),
            split_dialog: SplitDialog::default(),
            split_done: None,
            strip_job: JobKey::new("vidi-strip"),
            pending_open: None,
            index_of: None,
            selected: None,
            strip: Vec::new(),
            error: None,
            player: VideoPlayer::new("dataset"),
        }
    }
}

/// Downloads the guide's dataset into `out` and extracts it (once); returns
/// its folder. Stops, removing what it wrote, when `cancel` is set.
fn download_dataset(
    hub: &crate::hub::HubSettings,
    out: &Path,
    report: &(dyn Fn(&'static str, u64, u64) + Send + Sync),
    progress: crate::hub::Progress,
    cancel: &AtomicBool,
) -> Result<PathBuf, String> {
    let opts = crate::hub::DownloadOptions { progress: Some(progress), cancel: Some(cancel), timeout: None };
    let archive = crate::hub::download_dataset_file_opts(
        crate::hub::REFERENCE_DATASET,
        crate::hub::REFERENCE_DATASET_FILE,
        None,
        hub,
        &opts,
    )
    .map_err(|e| download_error(&e))?;
    let name = crate::hub::REFERENCE_DATASET_FILE.trim_end_matches(".tar.gz").trim_end_matches(".tar");
    let existing = out.join(name);
    if existing.is_dir() {
        // Extracted before: open it as it is.
        return Ok(existing);
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let limit = crate::hub::ExpansionLimit::default();
    let tops =
        crate::hub::extract_archive_with(&archive, out, limit, Some(cancel), &mut |d, t| report("extracting", d, t))
            .map_err(|e| e.to_string())?;
    tops.into_iter().find(|p| p.is_dir()).ok_or_else(|| "the archive held no folder".to_string())
}

/// A failed download of the guide's dataset, in one line that says what to do.
fn download_error(e: &crate::hub::HubError) -> String {
    use crate::hub::HubError;
    match e {
        HubError::Client { .. } | HubError::Network { .. } | HubError::Timeout { .. } => {
            "Could not download the UCF101 subset: the Hugging Face Hub cannot be reached (no network?). \
             Without the network, try the offline demo (Start here) or open a folder of your own videos."
                .into()
        }
        _ => e.to_string(),
    }
}

/// Fewer clips than this in a class are too few to learn it.
const FEW_CLIPS: usize = 10;

/// A dataset warning as the app says it: a button to press, not a command to run.
pub fn in_app_words(warning: &str) -> String {
    match warning.split_once("; consider vidi train --balance") {
        Some((what, _)) => format!("{what}. Tick \"Balance classes\" on the Train tab to draw the classes evenly."),
        None => warning.to_string(),
    }
}

impl DatasetTab {
    /// The class-imbalance warnings of `src`, when this tab has read it.
    pub fn imbalance_of(&self, src: &DataSource) -> Vec<String> {
        match (&self.index, &self.index_of) {
            (Some(index), Some(of)) if of == src => {
                index.warnings.iter().filter(|w| w.starts_with("class imbalance")).cloned().collect()
            }
            _ => Vec::new(),
        }
    }

    /// Whether a job of this tab runs (the buttons wait for it).
    fn working(&self, jobs: &Jobs) -> bool {
        jobs.is_running(&self.index_job)
            || jobs.is_running(&self.download_job)
            || jobs.is_running(&self.split_job)
            || jobs.is_running(&self.strip_job)
    }

    fn download(&mut self, hub: crate::hub::HubSettings, out: PathBuf, commands: &CommandSender) {
        self.error = None;
        self.download = Some(("downloading", 0, 0));
        commands.start(self.download_job.start(move |report, cancel| {
            let r = report.clone();
            let progress = crate::hub::progress(move |t| r.offer(("downloading", t.done, t.total)));
            download_dataset(&hub, &out, &|what, d, t| report.send((what, d, t)), progress, cancel)
        }));
    }

    /// Reads the folder `dir` once no job of this tab runs.
    pub fn open(&mut self, src: DataSource) {
        self.pending_open = Some(src);
    }

    fn start_index(&mut self, src: DataSource, commands: &CommandSender) {
        // The report shown is of the folder read last: it goes while another is read.
        (self.error, self.index, self.selected) = (None, None, None);
        self.index_of = Some(src.clone());
        self.strip.clear();
        commands.start(self.index_job.start(move |report, _| {
            let mut progress = |d: usize, t: usize| report.send((d, t));
            // A folder, or an annotation file (CSV, lists, JSON) as the source.
            crate::dataset::index_source(&src, &IndexOptions { check_readable: true, threads: 2 }, &mut progress)
                .map_err(|e| e.to_string())
        }));
    }

    /// Shows `video` (a segment of it: only that range plays) in the player and its frame strip.
    fn select(&mut self, video: PathBuf, segment: Option<(f64, f64)>, commands: &CommandSender) {
        self.player.open_range(&video, segment, commands);
        self.selected = Some(video.clone());
        self.strip.clear();
        commands.restart(self.strip_job.start(move |_, _| {
            let opts = DecodeOptions { bound: Some(FrameBound { short_side: 120 }), ..Default::default() };
            let r = crate::video::decode_uniform(&video, 8, &opts)
                .map(|(f, _)| f.into_iter().map(|f| small(&f, 120)).collect())
                .map_err(|e| e.to_string());
            (video, r)
        }));
    }

    pub fn show(&mut self, ui: &mut egui::Ui, env: &Env) {
        let s = env.settings;
        ui.heading("Dataset");
        ui.label("A folder of class folders: <dir>/{train,val,test}/<Class>/* or <dir>/<Class>/*. Or an annotation file: a CSV (video,label[,start,end][,split][,group]), a Kinetics CSV, a Something-Something JSON list. Drop either on the window, browse, or type its path; for official split lists (UCF101, HMDB51, mmaction2), open the videos folder with its lists below.");
        let (enter, dir) = env.edit(&s.data_dir, Setting::DataDir, |v| {
            path_field(ui, "Folder", v, "e.g. UCF101_subset", "Folder", Pick::Folder).lost_focus()
                && ui.input(|i| i.key_pressed(egui::Key::Enter))
        });
        let idle = !self.working(env.jobs);
        let mut open = false;
        let mut picked_file = None;
        ui.horizontal(|ui| {
            open = ui.add_enabled(idle, egui::Button::new("Open")).clicked();
            picked_file = pick_button(ui, "annotation-file", "Annotation file…", idle, Pick::List).into_iter().next();
            ui.label("or");
            let text = format!("Download the UCF101 subset (the guide's dataset) into {}", s.downloads);
            if ui.add_enabled(idle, egui::Button::new(text)).clicked() {
                self.download(env.hub.clone(), PathBuf::from(&s.downloads), env.commands);
            }
        });
        let lists_open = !s.data_lists.is_empty();
        let (_, lists) = env.edit(&s.data_lists, Setting::DataLists, |l| {
            egui::CollapsingHeader::new("Split lists (UCF101, HMDB51, mmaction2)").default_open(lists_open).show(
                ui,
                |ui| {
                    ui.label(
                        "With official split lists, the folder above holds the videos the lists name. \
                     Leave these empty for a folder of class folders or an annotation file.",
                    );
                    for (label, v, hint) in [
                        ("Classes file", &mut l.classes, "classInd.txt, or one class name per line"),
                        ("Train list", &mut l.train, "e.g. trainlist01.txt"),
                        ("Val list", &mut l.val, "optional"),
                        ("Test list", &mut l.test, "e.g. testlist01.txt"),
                    ] {
                        ui.horizontal(|ui| {
                            crate::app::widgets::labelled_text(ui, label, v, hint, 360.0);
                            if let Some(p) = pick_button(ui, label, "Browse…", true, Pick::List).into_iter().next() {
                                *v = p.to_string_lossy().into_owned();
                            }
                        });
                    }
                },
            );
        });
        let source = |data_dir: &str, lists: &DataLists| {
            let mut with = s.clone();
            (with.data_dir, with.data_lists) = (data_dir.to_string(), lists.clone());
            with.data_source()
        };
        if let Some(f) = picked_file {
            // An annotation file is the whole source: no lists go with it.
            let f = f.to_string_lossy().into_owned();
            env.commands.set(Setting::DataDir(f.clone()));
            env.commands.set(Setting::DataLists(DataLists::default()));
            self.split_done = None;
            self.open(source(&f, &DataLists::default()));
        } else if open || (enter && idle) {
            self.split_done = None;
            self.open(source(&dir, &lists));
        }
        if let Some((what, d, t)) = self.download {
            let mb = |b: u64| b as f64 / 1e6;
            ui.horizontal(|ui| {
                if ui.button("Cancel").clicked() {
                    env.commands.send(Command::StopJob(self.download_job.name().to_string()));
                }
                let text = if t == 0 {
                    "connecting to the Hugging Face Hub…".to_string()
                } else {
                    format!("{what} {:.1} of {:.1} MB", mb(d), mb(t))
                };
                ui.add(egui::ProgressBar::new(fraction(d, t)).text(text));
            });
        } else if !idle {
            let (d, t) = self.progress;
            ui.add(egui::ProgressBar::new(fraction(d as u64, t as u64)).text(format!("reading {d}/{t}")));
        }
        error_line(ui, &self.error);
        let Some(index) = &self.index else { return };
        ui.separator();
        let from = if index.format == "folder" { format!("{:?} layout", index.layout) } else { index.format.clone() };
        let segments = match index.segments {
            0 => String::new(),
            n => format!(", {n} of them segments"),
        };
        ui.label(format!("{} classes, {} samples{segments} ({from})", index.classes.len(), index.samples.len()));
        for w in &index.warnings {
            ui.colored_label(egui::Color32::from_rgb(200, 120, 0), format!("warning: {}", in_app_words(w)));
        }
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
        if !index.problems.is_empty() {
            ui.colored_label(
                egui::Color32::from_rgb(200, 120, 0),
                format!("{} problems in the lists (skipped):", index.problems.len()),
            );
            for p in &index.problems {
                let at = p.line.map(|l| format!(" line {l}")).unwrap_or_default();
                ui.label(format!("  {}{at}: {}", p.file.display(), p.message));
            }
        }
        if !index.leaking_groups.is_empty() {
            ui.colored_label(
                crate::app::widgets::ERROR,
                format!("{} groups appear in more than one split (data leakage):", index.leaking_groups.len()),
            );
            for g in &index.leaking_groups {
                ui.label(format!("  {} in {}", g.group, g.splits.join(", ")));
            }
        }
        self.data_warnings(ui, index);
        if let Some(m) = &self.split_done {
            ui.label(m);
        }
        let mut split_clicked = None;
        if index.layout == Layout::Flat && index.format == "folder" {
            ui.strong(
                "This folder has a sub-folder per class but no train / val / test split yet: training needs one. \
                 vidi can split it for you:",
            );
            split_clicked =
                self.split_dialog.show(ui, &index.root, index, idle).map(|(o, p)| (index.root.clone(), o, p));
        } else if ui.button("Next: train on this dataset").clicked() {
            env.commands.send(Command::ShowTab(Tab::Train));
        }
        ui.separator();
        ui.label("Videos (click one for its frame strip):");
        let mut clicked = None;
        egui::ScrollArea::vertical().id_salt("videos").max_height(180.0).show(ui, |ui| {
            for smp in &index.samples {
                let name = format!(
                    "{}{}  [{}{}]",
                    smp.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                    smp.segment.map(|g| format!(" {:.2}–{:.2} s", g.start_s, g.end_s)).unwrap_or_default(),
                    smp.split.as_deref().map(|s| format!("{s}/")).unwrap_or_default(),
                    smp.class
                );
                if ui.selectable_label(self.selected.as_ref() == Some(&smp.path), name).clicked() {
                    clicked = Some((smp.path.clone(), smp.segment.map(|g| (g.start_s, g.end_s))));
                }
            }
        });
        if let Some((v, segment)) = clicked {
            env.commands.set(Setting::Video(v.to_string_lossy().into_owned()));
            self.select(v, segment, env.commands);
        }
        if let Some((src, out, opts)) = split_clicked {
            self.split_done = None;
            env.commands.start(self.split_job.start(move |_, _| {
                let r = crate::dataset::split_folder(&src, &out, &opts).map_err(|e| e.to_string())?;
                let n = |sp: &str| r.counts.get(sp).map_or(0, |m| m.values().sum::<usize>());
                let said = format!(
                    "Split written into {}: {} train, {} val and {} test videos (linked, not copied). It is the dataset now.",
                    r.out.display(),
                    n("train"),
                    n("val"),
                    n("test")
                );
                Ok((r.out, said))
            }));
        }
        if self.player.path().is_some() {
            self.player.show(ui, 270.0);
        }
        if !self.strip.is_empty() {
            ui.label("Frames sampled evenly over the whole video:");
            frames::strip(ui, &self.strip, 90.0);
        }
    }

    /// Warnings about data that would train badly: too few clips in a class, no val split.
    fn data_warnings(&self, ui: &mut egui::Ui, index: &DatasetIndex) {
        // The clips a class trains on: its train split's, or all of a flat folder's.
        let of = if index.layout == Layout::Flat { None } else { Some("train") };
        let per_class: Vec<(String, usize)> = index
            .classes
            .iter()
            .map(|c| {
                let n = index.samples.iter().filter(|s| &s.class == c && (of.is_none() || s.split.as_deref() == of));
                (c.clone(), n.count())
            })
            .collect();
        let few: Vec<String> =
            per_class.iter().filter(|(_, n)| *n < FEW_CLIPS).map(|(c, n)| format!("{c} ({n})")).collect();
        if !few.is_empty() {
            warning_text(
                ui,
                &format!(
                    "Too few clips to learn from in {}: aim for at least {FEW_CLIPS} per class for training, \
                     better 50 or more.",
                    few.join(", ")
                ),
            );
        }
        if index.layout != Layout::Flat && !index.counts.contains_key("val") {
            warning_text(ui, "No val split: training cannot measure itself as it goes or keep its best epoch.");
        }
    }

    /// A folder came (downloaded, or split): it becomes the dataset, and opens.
    fn opened(&mut self, r: Result<PathBuf, String>, commands: &CommandSender) {
        match r {
            Ok(dir) => {
                commands.set(Setting::DataDir(dir.to_string_lossy().into_owned()));
                commands.set(Setting::DataLists(DataLists::default()));
                self.open(DataSource::path(dir));
            }
            Err(e) => self.error = Some(e),
        }
    }

    pub fn poll(&mut self, ctx: &egui::Context, jobs: &mut Jobs, commands: &CommandSender) {
        self.player.poll(jobs);
        let index = jobs.poll(&self.index_job);
        if let Some(&p) = index.messages.last() {
            self.progress = p;
        }
        match index.end {
            Some(Ok(Ok(i))) => {
                self.index = Some(i);
                self.strip.clear();
            }
            Some(Ok(Err(e))) => (self.error, self.index) = (Some(e), None),
            Some(Err(crashed)) => (self.error, self.index) = (Some(crashed.to_string()), None),
            None => {}
        }
        let download = jobs.poll(&self.download_job);
        if let Some(&d) = download.messages.last() {
            self.download = Some(d);
        }
        if let Some(end) = download.end {
            self.download = None;
            if let Ok(r) = end {
                self.opened(r, commands);
            }
        }
        if let Some(Ok(r)) = jobs.poll(&self.split_job).end {
            if let Ok((_, said)) = &r {
                self.split_done = Some(said.clone());
                self.split_dialog = SplitDialog::default();
            }
            self.opened(r.map(|(out, _)| out), commands);
        }
        match jobs.poll(&self.strip_job).end {
            // A strip for a video no longer selected is dropped.
            Some(Ok((v, _))) if self.selected.as_ref() != Some(&v) => {}
            Some(Ok((_, Ok(f)))) => self.strip = frames::textures(ctx, "strip", &f),
            Some(Ok((_, Err(e)))) => self.error = Some(e),
            _ => {}
        }
        if !self.working(jobs) {
            if let Some(dir) = self.pending_open.take() {
                self.start_index(dir, commands);
            }
        }
    }
}
