//! The Classify tab: videos queued, classified with the chosen model; their
//! labels shown (each clip playing beside them), copied or exported.

use std::path::{Path, PathBuf};

use eframe::egui;

use super::command::CommandSender;
use super::parts::{ModelChooser, VideoPlayer};
use super::Env;
use crate::app::jobs::{JobKey, Jobs};
use crate::app::widgets::files::{browse, save_button, save_text, Pick};
use crate::app::widgets::{error_line, error_text, labelled_text};
use crate::infer::{Sampling, VideoResult};

/// The frame choices offered, with their names and what each means, in a line.
const SAMPLINGS: [(Sampling, &str, &str); 4] = [
    (Sampling::Eval, "as Evaluate", "the view Evaluate scores: the same scores as Evaluate gives the video"),
    (Sampling::Uniform, "whole video", "frames spread over the whole video"),
    (Sampling::Multi, "3 clips", "three clips spread over the video, scores averaged (slower)"),
    (Sampling::Pipeline, "first frames", "the first frames only, exactly as the transformers pipeline reads them"),
];

/// A frame choice's name and its line.
fn sampling_words(s: Sampling) -> (&'static str, &'static str) {
    SAMPLINGS.iter().find(|(x, ..)| *x == s).map_or(("", ""), |(_, name, line)| (*name, *line))
}

/// The Classify tab.
pub struct ClassifyTab {
    /// Queued videos.
    files: Vec<PathBuf>,
    model: ModelChooser,
    player: VideoPlayer,
    pending_play: Option<PathBuf>,
    add: String,
    job: JobKey<(), Result<Vec<VideoResult>, String>>,
    results: Vec<VideoResult>,
    /// How the frames of the next run are chosen.
    sampling: Sampling,
    /// How the frames of the results shown were chosen.
    used: Sampling,
    error: Option<String>,
    copied: Option<String>,
}

impl Default for ClassifyTab {
    fn default() -> Self {
        ClassifyTab {
            files: Vec::new(),
            model: ModelChooser::new("classify"),
            player: VideoPlayer::new("classify"),
            pending_play: None,
            add: String::new(),
            job: JobKey::new("vidi-classify"),
            results: Vec::new(),
            sampling: Sampling::Eval,
            used: Sampling::Eval,
            error: None,
            copied: None,
        }
    }
}

/// The video a result is about.
fn video_of(r: &VideoResult) -> &PathBuf {
    let (VideoResult::Ok { video, .. } | VideoResult::Err { video, .. }) = r;
    video
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

impl ClassifyTab {
    /// Queues videos.
    pub fn queue(&mut self, files: Vec<PathBuf>) {
        self.files.extend(files);
    }

    pub fn show(&mut self, ui: &mut egui::Ui, env: &Env) {
        let s = env.settings;
        ui.heading("Classify");
        ui.label("Drop video files on the window, browse, or add a path.");
        self.model.show(ui, env, false);
        ui.horizontal(|ui| {
            labelled_text(ui, "Video", &mut self.add, "video path", 420.0);
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
        ui.horizontal(|ui| {
            ui.label("Frames:");
            for (choice, name, _) in SAMPLINGS {
                ui.radio_value(&mut self.sampling, choice, name);
            }
        });
        ui.weak(sampling_words(self.sampling).1);
        let running = env.jobs.is_running(&self.job);
        let can = !running && !self.files.is_empty() && !self.model.downloading();
        if ui.add_enabled(can, egui::Button::new("Run classification")).clicked() {
            let (model, files, device) = (s.use_model.clone(), self.files.clone(), env.compute.device.clone());
            self.error = None;
            self.used = self.sampling;
            let opts = crate::infer::ClassifyOptions { sampling: self.sampling, ..Default::default() };
            let hub = env.hub.clone();
            env.commands.start(self.job.start(move |_, _| {
                let dir = crate::hub::resolve_model_with(&model, None, None, &hub).map_err(|e| e.to_string())?;
                let (m, _) =
                    crate::model::VideoModel::load(&dir, &Default::default(), &device).map_err(|e| e.to_string())?;
                Ok(crate::infer::classify(&m, &files, &opts, &mut |_, _| {}))
            }));
        }
        if running {
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
        if !self.results.is_empty() {
            ui.label(format!("Frames of these results: {}", sampling_words(self.used).0));
        }
        let mut play = self.pending_play.take();
        let playing = self.player.path().map(Path::to_path_buf);
        for r in &self.results {
            ui.separator();
            let video = video_of(r);
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
                        VideoResult::Err { error, .. } => error_text(ui, error),
                    }
                });
                // The clip plays beside its labels.
                if playing.as_ref() == Some(video) {
                    ui.vertical(|ui| self.player.show(ui, 180.0));
                }
            });
        }
        if let Some(v) = play {
            self.player.open(&v, env.commands);
        }
    }

    pub fn poll(&mut self, jobs: &mut Jobs, commands: &CommandSender) {
        self.model.poll(jobs, commands);
        self.player.poll(jobs);
        match jobs.poll(&self.job).end {
            Some(Ok(Ok(v))) => {
                self.results = v;
                // The first clip starts playing beside its labels.
                if let Some(first) = self.results.first() {
                    self.pending_play = Some(video_of(first).clone());
                }
            }
            Some(Ok(Err(e))) => self.error = Some(e),
            Some(Err(crashed)) => self.error = Some(crashed.to_string()),
            None => {}
        }
    }
}
