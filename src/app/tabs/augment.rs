//! The Augmentation Preview tab: one clip sampled and transformed exactly as
//! in training (train) or evaluation (val), its frames before and after.

use std::path::Path;

use eframe::egui;

use super::command::Setting;
use super::Env;
use crate::app::jobs::{JobKey, Jobs};
use crate::app::widgets::files::{create_parent, path_field, save_button, Pick};
use crate::app::widgets::{error_line, frames, number, small};
use crate::dataset::presets::{Preset, TrainPreset, ValPreset};
use crate::preview::PreviewClip;
use crate::video::RgbFrame;

/// The Augmentation Preview tab.
pub struct AugmentTab {
    from_model: JobKey<(), Result<(String, TrainPreset), String>>,
    train: bool,
    p: TrainPreset,
    seed: u64,
    job: JobKey<(), Result<PreviewClip, String>>,
    clip: Option<PreviewClip>,
    original: Vec<egui::TextureHandle>,
    augmented: Vec<egui::TextureHandle>,
    error: Option<String>,
    saved: Option<String>,
}

impl Default for AugmentTab {
    fn default() -> Self {
        AugmentTab {
            from_model: JobKey::new("vidi-preview-model"),
            train: true,
            p: TrainPreset::default(),
            seed: 0,
            job: JobKey::new("vidi-preview"),
            clip: None,
            original: Vec::new(),
            augmented: Vec::new(),
            error: None,
            saved: None,
        }
    }
}

/// The frames, size and mean/std of the model `spec` (a folder or a cached Hub model).
fn model_preset(spec: String, hub: &crate::hub::HubSettings) -> Result<(String, TrainPreset), String> {
    use crate::hub::ModelStatus;
    match crate::hub::model_statuses(&[&spec], hub).pop() {
        Some(ModelStatus::Local(dir) | ModelStatus::Cached(dir)) => {
            let config = crate::model::ModelConfig::from_dir(&dir).map_err(|e| e.to_string())?;
            let processor = crate::model::config::model_processor(&dir, &config).map_err(|e| e.to_string())?;
            let preset = crate::train::train_preset_for(&config, &processor, &Default::default());
            Ok((spec, preset))
        }
        _ => Err(format!("{spec} is not a model folder or a downloaded model (see the Classify tab)")),
    }
}

impl AugmentTab {
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

    /// Previews `video` (in place of a preview under way).
    fn run(&mut self, env: &Env, video: String) {
        let (preset, seed) = (self.preset(), self.seed);
        self.error = None;
        env.commands.restart(self.job.start(move |_, _| {
            crate::preview::preview_clip(Path::new(&video), &preset, seed).map_err(|e| e.to_string())
        }));
    }

    pub fn show(&mut self, ui: &mut egui::Ui, env: &Env) {
        let s = env.settings;
        ui.heading("Augmentation Preview");
        ui.label("What the model will see: one clip sampled and transformed exactly as in training (train) or evaluation (val).");
        let (_, video) = env.edit(&s.video, Setting::Video, |v| {
            path_field(ui, "Video", v, "pick one on the Dataset tab, or type a path", "preview-video", Pick::Files)
        });
        ui.horizontal(|ui| {
            ui.radio_value(&mut self.train, true, "train preset");
            ui.radio_value(&mut self.train, false, "val preset");
            number(ui, "seed", &mut self.seed, 0..=u64::MAX);
        });
        let (p, train) = (&mut self.p, self.train);
        egui::Grid::new("preview-params").show(ui, |ui| {
            number(ui, "frames", &mut p.num_frames, 1..=64);
            number(ui, "sample rate", &mut p.sample_rate, 1..=16);
            number(ui, "crop size", &mut p.crop, 8..=1024);
            ui.end_row();
        });
        // The val preset resizes to the crop size and never flips: these apply to train alone.
        ui.scope(|ui| {
            if !train {
                ui.disable();
            }
            egui::Grid::new("preview-train-params").show(ui, |ui| {
                number(ui, "short side min", &mut p.min_short_side, 8..=1024);
                number(ui, "short side max", &mut p.max_short_side, 8..=1024);
                let l = ui.label("flip p");
                ui.add(egui::Slider::new(&mut p.flip_p, 0.0..=1.0)).labelled_by(l.id);
                ui.end_row();
            });
            if !train {
                ui.weak("train preset only: the val preset resizes to the crop size and does not flip");
            }
        });
        if p.max_short_side < p.min_short_side {
            p.max_short_side = p.min_short_side;
        }
        let (mean, std) = (p.mean, p.std);
        ui.horizontal(|ui| {
            let f = |v: [f32; 3]| format!("[{:.3}, {:.3}, {:.3}]", v[0], v[1], v[2]);
            ui.label(format!("normalise: mean {}  std {}", f(mean), f(std)));
            let busy = env.jobs.is_running(&self.from_model);
            if ui.add_enabled(!busy, egui::Button::new(format!("Use the settings of {}", s.model))).clicked() {
                let (spec, hub) = (s.model.clone(), env.hub.clone());
                env.commands.start(self.from_model.start(move |_, _| model_preset(spec, &hub)));
            }
        });
        ui.horizontal(|ui| {
            if ui.button("Preview").clicked() {
                self.run(env, video.clone());
            }
            if ui.button("New sample").clicked() {
                self.seed += 1;
                self.run(env, video.clone());
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
        if env.jobs.is_running(&self.job) {
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
            frames::strip(ui, &self.original, 80.0);
            ui.label("Augmented frames (un-normalised):");
            frames::strip(ui, &self.augmented, 80.0);
        }
    }

    pub fn poll(&mut self, ctx: &egui::Context, jobs: &mut Jobs) {
        match jobs.poll(&self.from_model).end {
            Some(Ok(Ok((spec, preset)))) => {
                self.p = TrainPreset { flip_p: self.p.flip_p, ..preset };
                self.saved = Some(format!("frames, sizes and mean/std of {spec}"));
            }
            Some(Ok(Err(e))) => self.error = Some(e),
            Some(Err(crashed)) => self.error = Some(crashed.to_string()),
            None => {}
        }
        match jobs.poll(&self.job).end {
            Some(Ok(Ok(c))) => {
                let orig: Vec<RgbFrame> = c.original.iter().map(|f| small(f, 160)).collect();
                self.original = frames::textures(ctx, "orig", &orig);
                self.augmented = frames::textures(ctx, "aug", &c.augmented);
                self.clip = Some(c);
            }
            Some(Ok(Err(e))) => self.error = Some(e),
            Some(Err(crashed)) => self.error = Some(crashed.to_string()),
            None => {}
        }
    }
}
