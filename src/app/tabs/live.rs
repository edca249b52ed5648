//! The Classify tab's live source: a camera or a stream URL, its picture,
//! the top labels of the newest window and a scrolling strip of the last ones.

use std::collections::VecDeque;

use eframe::egui;

use super::Env;
use crate::app::jobs::{JobKey, Jobs};
use crate::app::widgets::timeline::{strip, Block};
use crate::app::widgets::{error_line, labelled_text};
use crate::backend::Precision;
use crate::live::{LiveSummary, LiveWindow};
use crate::video::RgbFrame;

/// Windows kept in the scrolling strip.
const HISTORY: usize = 120;

/// What the live job sends.
pub enum LiveMsg {
    /// The model's labels, once loaded, and the float type its device computes in.
    Loaded(Vec<String>, Precision),
    /// A picture of the source.
    Frame(RgbFrame),
    /// A window's answer.
    Window(LiveWindow),
}

/// The live part of the Classify tab.
pub struct LiveView {
    /// A camera path or a stream URL.
    source: String,
    job: JobKey<LiveMsg, Result<LiveSummary, String>>,
    labels: Vec<String>,
    texture: Option<egui::TextureHandle>,
    /// The newest picture, until `show` uploads it.
    picture: Option<RgbFrame>,
    history: VecDeque<LiveWindow>,
    /// The float type the run shown computes in (its model's device says).
    used_precision: Precision,
    error: Option<String>,
    ended: Option<String>,
}

impl Default for LiveView {
    fn default() -> Self {
        LiveView {
            source: String::new(),
            job: JobKey::new("vidi-live"),
            labels: Vec::new(),
            texture: None,
            picture: None,
            history: VecDeque::new(),
            used_precision: Precision::F32,
            error: None,
            ended: None,
        }
    }
}

impl LiveView {
    /// The live part, its runs in the Classify tab's `precision`.
    pub fn show(&mut self, ui: &mut egui::Ui, env: &Env, precision: Precision) {
        let running = env.jobs.is_running(&self.job);
        ui.horizontal(|ui| {
            let cams = crate::live::cameras();
            egui::ComboBox::from_label("Camera")
                .selected_text(if cams.is_empty() { "none found".to_string() } else { "pick one".to_string() })
                .show_ui(ui, |ui| {
                    for c in &cams {
                        let name = c.display().to_string();
                        ui.selectable_value(&mut self.source, name.clone(), name);
                    }
                });
            labelled_text(
                ui,
                "Source",
                &mut self.source,
                "/dev/video0, rtsp://..., udp://..., http://.../stream",
                330.0,
            );
            let can = !running && !self.source.trim().is_empty();
            if ui.add_enabled(can, egui::Button::new("Start live")).clicked() {
                self.start(env, precision);
            }
            if ui.add_enabled(running, egui::Button::new("Stop live")).clicked() {
                env.commands.send(super::command::Command::StopJob(self.job.name().to_string()));
            }
        });
        error_line(ui, &self.error);
        if let Some(e) = &self.ended {
            ui.weak(e);
        }
        if !running && self.history.is_empty() {
            return;
        }
        if let Some(f) = self.picture.take() {
            let img = egui::ColorImage::from_rgb([f.width as usize, f.height as usize], &f.data);
            match &mut self.texture {
                Some(t) => t.set(img, egui::TextureOptions::LINEAR),
                None => self.texture = Some(ui.ctx().load_texture("live", img, egui::TextureOptions::LINEAR)),
            }
        }
        ui.horizontal_top(|ui| {
            if let Some(t) = &self.texture {
                ui.add(egui::Image::new((t.id(), crate::app::widgets::frames::fit_height(t, 180.0))));
            } else if running {
                ui.spinner();
                ui.label(format!("waiting for {}", self.source.trim()));
            }
            ui.vertical(|ui| {
                if let Some(w) = self.history.back() {
                    ui.label(format!("{:.1} s (lag {:.2} s, {} windows dropped)", w.t_s, w.lag_s, w.dropped));
                    if self.used_precision == Precision::F16 {
                        ui.weak("computed in f16");
                    }
                    for p in &w.predictions {
                        ui.add(
                            egui::ProgressBar::new(p.score)
                                .text(format!("{}  {:.3}", p.label, p.score))
                                .desired_width(320.0),
                        );
                    }
                }
            });
        });
        // The last windows, oldest on the left.
        if let (Some(first), Some(last)) = (self.history.front(), self.history.back()) {
            let step =
                if self.history.len() > 1 { (last.t_s - first.t_s) / (self.history.len() - 1) as f64 } else { 1.0 };
            let t0 = first.t_s - step;
            let blocks: Vec<Block> = self
                .history
                .iter()
                .map(|w| Block { start_s: w.t_s - step - t0, end_s: w.t_s - t0, predictions: &w.predictions })
                .collect();
            let span = step * HISTORY as f64;
            strip(ui, "live timeline", &blocks, &self.labels, span.max(last.t_s - t0), 500.0);
        }
    }

    fn start(&mut self, env: &Env, precision: Precision) {
        let (model, compute, hub) = (env.settings.use_model.clone(), env.compute.clone(), env.hub.clone());
        let source = self.source.trim().to_string();
        self.used_precision = Precision::F32;
        self.error = None;
        self.ended = None;
        self.history.clear();
        self.texture = None;
        env.commands.start(self.job.start(move |report, cancel| {
            let device = super::parts::precision_device(compute, precision)?;
            let dir = crate::hub::resolve_model_with(&model, None, None, &hub).map_err(|e| e.to_string())?;
            let (m, _) =
                crate::model::VideoModel::load(&dir, &Default::default(), &device).map_err(|e| e.to_string())?;
            let f16 = burn::tensor::Tensor::<1>::zeros([1], &device).dtype() == burn::tensor::DType::F16;
            report.send(LiveMsg::Loaded(m.labels.clone(), if f16 { Precision::F16 } else { Precision::F32 }));
            let last_frame = std::sync::Mutex::new(std::time::Instant::now() - std::time::Duration::from_secs(1));
            let frames = report.clone();
            let on_frame = move |f: &RgbFrame| {
                // About 15 pictures a second are enough to see the scene.
                let Ok(mut last) = last_frame.lock() else { return };
                if last.elapsed() >= std::time::Duration::from_millis(66) {
                    *last = std::time::Instant::now();
                    frames.offer(LiveMsg::Frame(crate::app::widgets::small(f, 270)));
                }
            };
            let opts = crate::live::LiveOptions { top_k: 3, ..Default::default() };
            crate::live::classify_live(
                &m,
                &source,
                &opts,
                cancel,
                &mut |w| report.send(LiveMsg::Window(w.clone())),
                Some(&on_frame),
            )
            .map_err(|e| e.to_string())
        }));
    }

    pub fn poll(&mut self, jobs: &mut Jobs) {
        let polled = jobs.poll(&self.job);
        for m in polled.messages {
            match m {
                LiveMsg::Loaded(l, p) => (self.labels, self.used_precision) = (l, p),
                LiveMsg::Frame(f) => self.picture = Some(f),
                LiveMsg::Window(w) => {
                    self.history.push_back(w);
                    while self.history.len() > HISTORY {
                        self.history.pop_front();
                    }
                }
            }
        }
        match polled.end {
            Some(Ok(Ok(s))) => {
                self.ended = Some(format!(
                    "{} windows in {:.1} s ({} dropped while the model was busy); {}",
                    s.windows, s.seconds, s.dropped, s.ended
                ))
            }
            Some(Ok(Err(e))) => self.error = Some(e),
            Some(Err(crashed)) => self.error = Some(crashed.to_string()),
            None => {}
        }
    }
}
