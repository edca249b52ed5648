//! The Evaluate tab: a model on a dataset split; accuracy, per-class metrics,
//! a confusion matrix whose cells list (and play) their videos.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use eframe::egui;

use super::command::Setting;
use super::parts::{Sharing, VideoPlayer};
use super::Env;
use crate::app::jobs::{JobKey, Jobs};
use crate::app::widgets::files::{path_field, Pick};
use crate::app::widgets::{error_line, number, plots};
use crate::dataset::IndexOptions;
use crate::eval::EvalReport;

/// The Evaluate tab.
pub struct EvaluateTab {
    model: String,
    split: String,
    clips: usize,
    crops: usize,
    job: JobKey<(), Result<EvalReport, String>>,
    report: Option<EvalReport>,
    cell: Option<(usize, usize)>,
    error: Option<String>,
    share: Sharing,
    player: VideoPlayer,
}

impl Default for EvaluateTab {
    fn default() -> Self {
        EvaluateTab {
            model: String::new(),
            split: "test".into(),
            clips: 1,
            crops: 1,
            job: JobKey::new("vidi-eval"),
            report: None,
            cell: None,
            error: None,
            share: Sharing::new("evaluate"),
            player: VideoPlayer::new("evaluate"),
        }
    }
}

fn eval_job(
    model: String,
    data: String,
    split: String,
    opts: crate::eval::EvalOptions,
    (device, hub): (burn::tensor::Device, crate::hub::HubSettings),
    cancel: &AtomicBool,
) -> Result<EvalReport, String> {
    if model.trim().is_empty() {
        return Err("choose a model first: a model folder (a run's best/) or a Hub id".into());
    }
    let dir = crate::hub::resolve_model_with(&model, None, None, &hub).map_err(|e| e.to_string())?;
    let (m, _) = crate::model::VideoModel::load(&dir, &Default::default(), &device).map_err(|e| e.to_string())?;
    // A folder, or an annotation file (its segments are scored over their own range).
    let index = crate::dataset::index_source(
        &crate::dataset::DataSource::path(Path::new(&data)),
        &IndexOptions { check_readable: true, threads: 2 },
        &mut |_, _| {},
    )
    .map_err(|e| e.to_string())?;
    let items = crate::eval::split_items(&index, &split, &m.labels)?;
    crate::eval::evaluate(&m, &items, &opts, &mut |_, _| {}, cancel).map_err(|e| e.to_string())
}

impl EvaluateTab {
    /// The model to evaluate from now on (a run just trained: its best/).
    pub fn use_model(&mut self, dir: &Path) {
        self.model = dir.display().to_string();
    }

    pub fn show(&mut self, ui: &mut egui::Ui, env: &Env) {
        let s = env.settings;
        ui.heading("Evaluate");
        // The run folder's best model, once there is one.
        let best = format!("{}/best", s.run_dir.trim_end_matches('/'));
        if self.model.is_empty() && Path::new(&best).is_dir() {
            self.model = best;
        }
        path_field(ui, "Model", &mut self.model, "a model folder (e.g. RUN/best) or Hub id", "Model", Pick::Folder);
        let (_, data) = env.edit(&s.data_dir, Setting::DataDir, |v| {
            path_field(ui, "Dataset", v, "split layout", "Dataset", Pick::Folder)
        });
        ui.horizontal(|ui| {
            let l = ui.label("split");
            ui.text_edit_singleline(&mut self.split).labelled_by(l.id);
            number(ui, "clips", &mut self.clips, 1..=10);
            number(ui, "crops", &mut self.crops, 1..=3);
        });
        let running = env.jobs.is_running(&self.job);
        if ui.add_enabled(!running, egui::Button::new("Run evaluation")).clicked() {
            let (m, d, sp) = (self.model.clone(), data, self.split.clone());
            let views = crate::infer::Views { clips: self.clips, crops: self.crops, ..Default::default() };
            let opts = crate::eval::EvalOptions { views, ..Default::default() };
            self.error = None;
            let on = (env.compute.device.clone(), env.hub.clone());
            env.commands.start(self.job.start(move |_, cancel| eval_job(m, d, sp, opts, on, cancel)));
        }
        if running {
            ui.spinner();
        }
        error_line(ui, &self.error);
        self.share.show(ui, env, &PathBuf::from(&self.model));
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

    pub fn poll(&mut self, jobs: &mut Jobs) {
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
