//! The Evaluate tab: a model on a dataset split; accuracy, per-class metrics,
//! a confusion matrix whose cells list (and play) their videos.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use eframe::egui;

use super::command::{CommandSender, Setting};
use super::parts::{ModelChooser, Sharing, VideoPlayer};
use super::Env;
use crate::app::jobs::{JobKey, Jobs};
use crate::app::widgets::files::{path_field, save_button, save_text, Pick};
use crate::app::widgets::{error_line, number, plots};
use crate::backend::Precision;
use crate::dataset::IndexOptions;
use crate::eval::EvalReport;

/// The Evaluate tab.
pub struct EvaluateTab {
    model: ModelChooser,
    split: String,
    clips: usize,
    crops: usize,
    /// The float type of the next run: f16 on a second device of the GPU.
    precision: Precision,
    job: JobKey<(), Result<EvalReport, String>>,
    report: Option<EvalReport>,
    /// What the report shown was made from: (model, dataset, split, clips, crops, precision).
    report_of: (String, String, String, usize, usize, Precision),
    /// What the last export wrote.
    saved: Option<String>,
    cell: Option<(usize, usize)>,
    error: Option<String>,
    share: Sharing,
    player: VideoPlayer,
}

impl Default for EvaluateTab {
    fn default() -> Self {
        EvaluateTab {
            model: ModelChooser::new("evaluate"),
            split: "test".into(),
            clips: 1,
            crops: 1,
            precision: Precision::F32,
            job: JobKey::new("vidi-eval"),
            report: None,
            report_of: Default::default(),
            saved: None,
            cell: None,
            error: None,
            share: Sharing::new("evaluate"),
            player: VideoPlayer::new("evaluate"),
        }
    }
}

fn eval_job(
    model: String,
    data: crate::dataset::DataSource,
    split: String,
    opts: crate::eval::EvalOptions,
    (compute, precision, hub): (crate::backend::Compute, Precision, crate::hub::HubSettings),
    cancel: &AtomicBool,
) -> Result<EvalReport, String> {
    if model.trim().is_empty() {
        return Err("choose a model first: a model folder (a run's best/) or a Hub id".into());
    }
    let device = super::parts::precision_device(compute, precision)?;
    let dir = crate::hub::resolve_model_with(&model, None, None, &hub).map_err(|e| e.to_string())?;
    let (m, _) = crate::model::VideoModel::load(&dir, &Default::default(), &device).map_err(|e| e.to_string())?;
    // A folder, or an annotation file (its segments are scored over their own range).
    let index = crate::dataset::index_source(&data, &IndexOptions { check_readable: true, threads: 2 }, &mut |_, _| {})
        .map_err(|e| e.to_string())?;
    let items = crate::eval::split_items(&index, &split, &m.labels)?;
    crate::eval::evaluate(&m, &items, &opts, &mut |_, _| {}, cancel).map_err(|e| e.to_string())
}

impl EvaluateTab {
    pub fn show(&mut self, ui: &mut egui::Ui, env: &Env) {
        let s = env.settings;
        ui.heading("Evaluate");
        // The run folder's best model, once there is one.
        let best = format!("{}/best", s.run_dir.trim_end_matches('/'));
        if s.use_model.is_empty() && Path::new(&best).is_dir() {
            env.commands.set(Setting::UseModel(best));
        }
        self.model.show(ui, env, false);
        let (_, data) = env.edit(&s.data_dir, Setting::DataDir, |v| {
            path_field(ui, "Dataset", v, "split layout, or an annotation file", "Dataset", Pick::Folder)
        });
        if !s.data_lists.is_empty() {
            ui.weak("with the split lists set on the Dataset tab");
        }
        ui.horizontal(|ui| {
            let l = ui.label("split");
            ui.text_edit_singleline(&mut self.split).labelled_by(l.id);
            number(ui, "clips", &mut self.clips, 1..=10);
            number(ui, "crops", &mut self.crops, 1..=3);
        });
        if let Some((rate, _)) = super::parts::run_clip_window(&s.use_model) {
            ui.weak(format!("clips take every {rate} frame(s), as the model's training run tested it"));
        }
        super::parts::precision_choice(ui, &mut self.precision, env.compute.is_gpu, super::parts::F16_INFERENCE);
        let inputs = (s.use_model.clone(), data.clone(), self.split.clone(), self.clips, self.crops, self.precision);
        let running = env.jobs.is_running(&self.job);
        if ui.add_enabled(!running, egui::Button::new("Run evaluation")).clicked() {
            let mut with = s.clone();
            with.data_dir = data;
            let (m, d, sp) = (s.use_model.clone(), with.data_source(), self.split.clone());
            let mut views = crate::infer::Views { clips: self.clips, crops: self.crops, ..Default::default() };
            if let Some((sample_rate, fps)) = super::parts::run_clip_window(&m) {
                (views.sample_rate, views.fps) = (sample_rate, fps);
            }
            let opts = crate::eval::EvalOptions { views, ..Default::default() };
            // The old report goes: what shows next is this run's, or its error.
            (self.error, self.report, self.cell, self.saved) = (None, None, None, None);
            self.report_of = inputs.clone();
            let on = (env.compute.clone(), self.precision, env.hub.clone());
            env.commands.start(self.job.start(move |_, cancel| eval_job(m, d, sp, opts, on, cancel)));
        }
        if running {
            ui.spinner();
        }
        error_line(ui, &self.error);
        self.share.show(ui, env, &PathBuf::from(&s.use_model));
        let Some(r) = &self.report else { return };
        ui.separator();
        if self.report_of != inputs {
            ui.colored_label(
                crate::app::widgets::WARNING,
                "Out of date: the model, dataset, split, views or precision changed since this report. Run the evaluation again.",
            );
        }
        ui.horizontal(|ui| {
            let dir = Path::new(&s.downloads);
            let stem = Path::new(&self.report_of.0)
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| format!("vidi-eval-{}-{}", n.to_string_lossy(), self.report_of.2))
                .unwrap_or_else(|| format!("vidi-eval-{}", self.report_of.2));
            if let Some(path) = save_button(ui, "Save report (JSON)…", true, &format!("{stem}.json"), dir) {
                let json = serde_json::to_string_pretty(r).unwrap_or_default();
                self.saved = Some(save_text(&path, &json));
            }
            if let Some(path) = save_button(ui, "Save confusion (CSV)…", true, &format!("{stem}-confusion.csv"), dir)
            {
                self.saved = Some(save_text(&path, &r.confusion_csv()));
            }
            if let Some(path) = save_button(ui, "Save confusion (PNG)…", true, &format!("{stem}-confusion.png"), dir)
            {
                let written = crate::heatmap::confusion_png(&r.labels, &r.confusion).and_then(|png| {
                    crate::app::widgets::files::create_parent(&path)
                        .and_then(|()| crate::util::write_atomic(&path, &png))
                        .map_err(|e| e.to_string())
                });
                self.saved = Some(match written {
                    Ok(()) => format!("wrote {}", path.display()),
                    Err(e) => format!("{}: {e}", path.display()),
                });
            }
        });
        if let Some(m) = &self.saved {
            ui.label(m);
        }
        let f16 = if self.report_of.5 == Precision::F16 { ", computed in f16" } else { "" };
        ui.label(format!(
            "accuracy {:.2}%   top-5 {:.2}%   ({} videos, {} clip(s) x {} crop(s){f16})",
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
        ui.label("Confusion matrix (rows: true class, columns: predicted class; the diagonal is right, red cells are mistakes). Click a cell for its videos:");
        if let Some(cell) = plots::confusion(ui, &r.labels, &r.confusion) {
            self.cell = Some(cell);
        }
        if let Some((i, j)) = self.cell {
            ui.label(format!("true {}, predicted {} (click one to play it):", r.labels[i], r.labels[j]));
            for o in r.outcomes.iter().filter(|o| o.label == r.labels[i] && o.predicted == r.labels[j]) {
                let top = o.top3.iter().map(|p| format!("{} {:.2}", p.label, p.score)).collect::<Vec<_>>().join(", ");
                if ui.link(format!("{}   ({top})", o.video.display())).clicked() {
                    env.commands.set(Setting::Video(o.video.to_string_lossy().into_owned()));
                    self.player.open(&o.video, env.commands);
                }
            }
            if self.player.path().is_some() {
                self.player.show(ui, 240.0);
            }
        }
    }

    pub fn poll(&mut self, jobs: &mut Jobs, commands: &CommandSender) {
        self.model.poll(jobs, commands);
        self.share.poll(jobs);
        self.player.poll(jobs);
        match jobs.poll(&self.job).end {
            Some(Ok(Ok(rep))) => self.report = Some(rep),
            Some(Ok(Err(e))) => self.error = Some(e),
            Some(Err(crashed)) => self.error = Some(crashed.to_string()),
            None => {}
        }
    }
}
