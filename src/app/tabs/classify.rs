//! The Classify tab: videos and URLs queued, classified with the chosen
//! model, whole or as a timeline of windows; their labels shown (each clip
//! playing beside them, a timeline's strip under it), copied or exported;
//! and a live source (a camera or a stream).

use std::path::{Path, PathBuf};

use eframe::egui;

use super::command::CommandSender;
use super::live::LiveView;
use super::parts::{ModelChooser, VideoPlayer};
use super::Env;
use crate::app::jobs::{JobKey, Jobs, Reporter};
use crate::app::widgets::files::{browse, save_button, save_text, Pick};
use crate::app::widgets::timeline::{strip, Block};
use crate::app::widgets::{error_line, error_text, labelled_text};
use crate::backend::Precision;
use crate::infer::{Sampling, VideoResult};
use crate::net::TempVideo;
use crate::timeline::{ExportFormat, Timeline};

/// What a classification run gives back.
pub struct Classified {
    results: Vec<VideoResult>,
    /// Each result's timeline, in timeline mode.
    timelines: Vec<Option<Timeline>>,
    /// The model's labels (for the strip's colours).
    labels: Vec<String>,
    /// URLs' downloads, kept while their results are shown (the player plays them).
    downloads: Vec<(PathBuf, TempVideo)>,
}

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
    job: JobKey<String, Result<Classified, String>>,
    results: Vec<VideoResult>,
    timelines: Vec<Option<Timeline>>,
    labels: Vec<String>,
    downloads: Vec<(PathBuf, TempVideo)>,
    /// Classify windows along each video instead of the video as one.
    timeline: bool,
    /// What the running job is doing.
    progress: Option<String>,
    live: LiveView,
    /// How the frames of the next run are chosen.
    sampling: Sampling,
    /// How the frames of the results shown were chosen.
    used: Sampling,
    /// The float type of the next run: f16 on a second device of the GPU.
    precision: Precision,
    /// The float type of the results shown.
    used_precision: Precision,
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
            timelines: Vec::new(),
            labels: Vec::new(),
            downloads: Vec::new(),
            timeline: false,
            progress: None,
            live: LiveView::default(),
            sampling: Sampling::Eval,
            used: Sampling::Eval,
            precision: Precision::F32,
            used_precision: Precision::F32,
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

/// Downloads the URLs among `files` (reporting progress) and classifies
/// them all, whole or as timelines; results carry the names as given.
fn run(
    model: &crate::model::VideoModel,
    files: &[PathBuf],
    opts: &crate::infer::ClassifyOptions,
    timeline: bool,
    report: &Reporter<String>,
    cancel: &std::sync::atomic::AtomicBool,
) -> Classified {
    let mut downloads = Vec::new();
    let mut failed: Vec<Option<String>> = vec![None; files.len()];
    let mut local: Vec<PathBuf> = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        let Some(url) = f.to_str().filter(|s| crate::net::is_url(s)) else {
            local.push(f.clone());
            continue;
        };
        let progress = |done: u64, total: Option<u64>| {
            let total = total.map_or(String::new(), |t| format!(" of {}", crate::util::size_text(t)));
            report.offer(format!("downloading {url}: {}{total}", crate::util::size_text(done)));
        };
        let o = crate::net::UrlOptions { progress: Some(&progress), cancel: Some(cancel), ..Default::default() };
        match crate::net::download(url, &o) {
            Ok(t) => {
                local.push(t.path().to_path_buf());
                downloads.push((f.clone(), t));
            }
            Err(e) => {
                failed[i] = Some(format!("{url}: {e}"));
                local.push(f.clone());
            }
        }
    }
    // Names as given, and errors that name them.
    let shown = |i: usize, msg: String| msg.replace(&local[i].display().to_string(), &files[i].display().to_string());
    let mut results = Vec::with_capacity(files.len());
    let mut timelines = Vec::with_capacity(files.len());
    if timeline {
        let to = crate::timeline::TimelineOptions { top_k: opts.top_k, ..Default::default() };
        for (i, f) in files.iter().enumerate() {
            let video = f.clone();
            if let Some(error) = failed[i].take() {
                results.push(VideoResult::Err { video, error });
                timelines.push(None);
                continue;
            }
            report.offer(format!("{}: reading", f.display()));
            let mut count = 0;
            let r = crate::timeline::classify_timeline(model, &local[i], &to, &mut |w| {
                count += 1;
                report.offer(format!("{}: {count} windows, {:.1} s", f.display(), w.end_s));
            });
            match r {
                Ok(t) => {
                    results.push(VideoResult::Ok { video, predictions: t.predictions.clone() });
                    timelines.push(Some(t));
                }
                Err(e) => {
                    results.push(VideoResult::Err { video, error: shown(i, e.to_string()) });
                    timelines.push(None);
                }
            }
            if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
        }
    } else {
        let got = crate::infer::classify(model, &local, opts, &mut |_, r| {
            report.offer(format!("classified {}", video_of(r).display()));
        });
        for (i, r) in got.into_iter().enumerate() {
            let video = files[i].clone();
            results.push(match (failed[i].take(), r) {
                (Some(error), _) => VideoResult::Err { video, error },
                (None, VideoResult::Ok { predictions, .. }) => VideoResult::Ok { video, predictions },
                (None, VideoResult::Err { error, .. }) => VideoResult::Err { video, error: shown(i, error) },
            });
            timelines.push(None);
        }
    }
    Classified { results, timelines, labels: model.labels.clone(), downloads }
}

impl ClassifyTab {
    /// Queues videos.
    pub fn queue(&mut self, files: Vec<PathBuf>) {
        self.files.extend(files);
    }

    /// The file that plays for `video` (a URL plays from its download).
    fn playable(&self, video: &Path) -> PathBuf {
        self.downloads.iter().find(|(u, _)| u == video).map_or(video.to_path_buf(), |(_, t)| t.path().to_path_buf())
    }

    /// Results, timelines and downloads of an earlier run, gone.
    fn clear_results(&mut self) {
        self.results.clear();
        self.timelines.clear();
        self.downloads.clear();
    }

    pub fn show(&mut self, ui: &mut egui::Ui, env: &Env) {
        let s = env.settings;
        ui.heading("Classify");
        ui.label("Drop video files on the window, browse, or paste a path or an http(s) URL.");
        self.model.show(ui, env, false);
        ui.horizontal(|ui| {
            let field = labelled_text(ui, "Video or URL", &mut self.add, "video path or https://...", 420.0);
            let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if (ui.button("Add").clicked() || entered) && !self.add.trim().is_empty() {
                // Several pasted at once: one per line or space.
                self.files.extend(self.add.split_whitespace().map(PathBuf::from));
                self.add.clear();
            }
            self.files.extend(browse(ui, "videos", Pick::Files));
            if ui.button("Clear").clicked() {
                self.files.clear();
                self.clear_results();
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
        super::parts::precision_choice(ui, &mut self.precision, env.compute.is_gpu, super::parts::F16_INFERENCE);
        ui.checkbox(&mut self.timeline, "Timeline: classify window after window along each video")
            .on_hover_text("Each window is num_frames frames read as the pipeline reads a video's start; windows follow one another without overlap. The strip under the video shows the top label of each; click it to go there.");
        let running = env.jobs.is_running(&self.job);
        let can = !running && !self.files.is_empty() && !self.model.downloading();
        if ui.add_enabled(can, egui::Button::new("Run classification")).clicked() {
            let (model, files, compute) = (s.use_model.clone(), self.files.clone(), env.compute.clone());
            self.error = None;
            self.used = self.sampling;
            let precision = self.precision;
            self.used_precision = precision;
            // Results of another model or other settings would mislead: they go.
            self.clear_results();
            let mut opts = crate::infer::ClassifyOptions { sampling: self.sampling, ..Default::default() };
            // A run's model is viewed as its run tested it, so "as Evaluate" agrees with Evaluate.
            if let Some((sample_rate, fps)) = super::parts::run_clip_window(&model) {
                (opts.eval_views.sample_rate, opts.eval_views.fps) = (sample_rate, fps);
            }
            let (hub, timeline) = (env.hub.clone(), self.timeline);
            env.commands.start(self.job.start(move |report, cancel| {
                let device = super::parts::precision_device(compute, precision)?;
                let dir = crate::hub::resolve_model_with(&model, None, None, &hub).map_err(|e| e.to_string())?;
                let (m, _) =
                    crate::model::VideoModel::load(&dir, &Default::default(), &device).map_err(|e| e.to_string())?;
                Ok(run(&m, &files, &opts, timeline, report, cancel))
            }));
        }
        if running {
            ui.horizontal(|ui| {
                ui.spinner();
                if let Some(p) = &self.progress {
                    ui.label(p);
                }
                if ui.button("Cancel").clicked() {
                    env.commands.send(super::command::Command::StopJob(self.job.name().to_string()));
                }
            });
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
            let done: Vec<(String, &Timeline)> = self
                .results
                .iter()
                .zip(&self.timelines)
                .filter_map(|(r, t)| Some((video_of(r).display().to_string(), t.as_ref()?)))
                .collect();
            let mut note = None;
            if !done.is_empty() {
                let dir = Path::new(&s.downloads);
                ui.horizontal(|ui| {
                    ui.label("Timeline:");
                    let refs: Vec<(&str, &Timeline)> = done.iter().map(|(v, t)| (v.as_str(), *t)).collect();
                    if let Some(path) = save_button(ui, "CSV", true, "vidi-timeline.csv", dir) {
                        note = Some(save_text(&path, &crate::timeline::to_csv(&refs)));
                    }
                    // Subtitles hold one video: the first timeline's (the one playing, when it has one).
                    let playing = self.player.path().map(Path::to_path_buf);
                    let chosen = done
                        .iter()
                        .find(|(v, _)| playing.as_deref() == Some(self.playable(Path::new(v)).as_path()))
                        .unwrap_or(&done[0]);
                    let stem = Path::new(&chosen.0).file_stem().and_then(|s| s.to_str()).unwrap_or("timeline");
                    for (label, format, ext) in
                        [("VTT subtitles", ExportFormat::Vtt, "vtt"), ("SRT subtitles", ExportFormat::Srt, "srt")]
                    {
                        if let Some(path) = save_button(ui, label, true, &format!("{stem}.{ext}"), dir) {
                            note = Some(save_text(&path, &crate::timeline::to_subtitles(chosen.1, format)));
                        }
                    }
                });
            }
            if note.is_some() {
                self.copied = note;
            }
            if let Some(c) = &self.copied {
                ui.label(c);
            }
        }
        if !self.results.is_empty() {
            let f16 = if self.used_precision == Precision::F16 { ", computed in f16" } else { "" };
            ui.label(format!("Frames of these results: {}{f16}", sampling_words(self.used).0));
        }
        let mut play = self.pending_play.take();
        let mut seek: Option<f64> = None;
        let playing = self.player.path().map(Path::to_path_buf);
        for (i, r) in self.results.iter().enumerate() {
            ui.separator();
            let video = video_of(r);
            let file = self.playable(video);
            ui.horizontal_top(|ui| {
                ui.vertical(|ui| {
                    let name = video.display().to_string();
                    if ui
                        .selectable_label(playing.as_ref() == Some(&file), egui::RichText::new(name).strong())
                        .clicked()
                    {
                        play = Some(file.clone());
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
                if playing.as_ref() == Some(&file) {
                    ui.vertical(|ui| self.player.show(ui, 180.0));
                }
            });
            if let Some(Some(t)) = self.timelines.get(i) {
                let blocks: Vec<Block> = t
                    .timeline
                    .iter()
                    .map(|w| Block { start_s: w.start_s, end_s: w.end_s, predictions: &w.predictions })
                    .collect();
                let duration = t.frames as f64 / t.fps;
                ui.label(format!(
                    "{} windows of {} frames; {} segments",
                    t.timeline.len(),
                    t.window_frames,
                    t.segments.len()
                ));
                if let Some(at) =
                    strip(ui, &format!("timeline of {}", video.display()), &blocks, &self.labels, duration, 600.0)
                {
                    if playing.as_ref() != Some(&file) {
                        play = Some(file.clone());
                    }
                    seek = Some(at);
                }
            }
        }
        if let Some(v) = play {
            self.player.open(&v, env.commands);
        }
        if let Some(at) = seek {
            self.player.seek_secs(at);
        }
        ui.separator();
        ui.heading("Live");
        ui.label("Classify a camera or a stream as it plays: pick a camera or type a stream URL.");
        self.live.show(ui, env, self.precision);
    }

    pub fn poll(&mut self, jobs: &mut Jobs, commands: &CommandSender) {
        self.model.poll(jobs, commands);
        self.player.poll(jobs);
        self.live.poll(jobs);
        let polled = jobs.poll(&self.job);
        if let Some(p) = polled.messages.into_iter().last() {
            self.progress = Some(p);
        }
        if polled.end.is_some() {
            self.progress = None;
        }
        match polled.end {
            Some(Ok(Ok(c))) => {
                self.results = c.results;
                self.timelines = c.timelines;
                self.labels = c.labels;
                self.downloads = c.downloads;
                // The first clip starts playing beside its labels.
                if let Some(first) = self.results.first() {
                    self.pending_play = Some(self.playable(video_of(first)));
                }
            }
            Some(Ok(Err(e))) => self.error = Some(e),
            Some(Err(crashed)) => self.error = Some(crashed.to_string()),
            None => {}
        }
    }
}
