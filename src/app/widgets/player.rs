//! A small video player: play/pause, scrub, frame step, at the file's own
//! timing (frame timestamps, so variable frame rates play right).
//!
//! Frames are decoded by [`decode_range`] (its owner runs it on a worker thread and
//! hands the frames over), scaled down for display, and kept in memory up to a
//! budget; playback starts while decoding goes on. One texture is updated when
//! the shown frame changes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use eframe::egui;

use crate::video::{DecodeOptions, FrameBound, RgbFrame};

/// Display height frames are scaled to.
const HEIGHT: u32 = 270;
/// Memory for decoded frames (longer videos play their first part).
const BUDGET_BYTES: usize = 384 << 20;

/// Decodes `path` for the player, frame by frame into `on_frame`, until the
/// memory budget is spent or `cancel` is set; with a `range` (seconds, end
/// exclusive), only the frames whose times lie in it: a segment plays from
/// its start to its end. Returns whether the video was cut short.
pub fn decode_range(
    path: &Path,
    range: Option<(f64, f64)>,
    on_frame: &dyn Fn(RgbFrame),
    cancel: &AtomicBool,
) -> Result<bool, String> {
    let mut bytes = 0usize;
    let mut truncated = false;
    // Frames far larger than the screen are scaled down as they are decoded.
    let opts = DecodeOptions { bound: Some(FrameBound { short_side: HEIGHT }), ..Default::default() };
    crate::video::for_each_frame(path, &opts, &mut |f| {
        if let (Some((start, end)), Some(t)) = (range, f.time_secs) {
            if t < start - 1e-6 {
                return !cancel.load(Ordering::Relaxed);
            }
            if t >= end - 1e-6 {
                return false;
            }
        }
        let f = super::small(&f, HEIGHT);
        bytes += f.data.len();
        truncated = bytes > BUDGET_BYTES;
        on_frame(f);
        !truncated && !cancel.load(Ordering::Relaxed)
    })
    .map(|_| truncated)
    .map_err(|e| e.to_string())
}

/// The player's state.
#[derive(Default)]
pub struct Player {
    path: Option<PathBuf>,
    /// The part of the video played (seconds), when it is a segment.
    range: Option<(f64, f64)>,
    frames: Vec<RgbFrame>,
    /// The frame shown.
    pos: usize,
    /// Which frame the texture holds.
    shown: Option<usize>,
    texture: Option<egui::TextureHandle>,
    playing: bool,
    /// Playback clock: seconds into the video at the last frame drawn.
    clock: f64,
    complete: bool,
    truncated: bool,
    error: Option<String>,
}

impl Player {
    /// The video loaded (or loading).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Loads `path` (or its part in `range`, seconds: a segment) and starts
    /// playing it as its frames come. Returns false (and does nothing) if it
    /// is loaded already; else the owner decodes it.
    pub fn open_range(&mut self, path: &Path, range: Option<(f64, f64)>) -> bool {
        if self.path.as_deref() == Some(path) && self.range == range {
            return false;
        }
        *self = Player {
            path: Some(path.to_path_buf()),
            range,
            playing: true,
            texture: self.texture.take(),
            ..Default::default()
        };
        true
    }

    /// A decoded frame.
    pub fn add_frame(&mut self, f: RgbFrame) {
        self.frames.push(f);
    }

    /// The decoding ended: whether the video was cut short, or why it failed.
    pub fn finish(&mut self, r: Result<bool, String>) {
        match r {
            Ok(truncated) => {
                self.complete = true;
                self.truncated = truncated;
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Advances the clock while playing.
    fn advance(&mut self, ctx: &egui::Context) {
        if !self.playing || self.frames.is_empty() {
            return;
        }
        let dt = ctx.input(|i| i.stable_dt).min(0.1) as f64;
        self.clock += dt;
        // The last frame whose time has come; frames without timestamps play at 30 fps.
        let t0 = self.time(0);
        let mut pos = self.pos;
        while pos + 1 < self.frames.len() && self.time(pos + 1) - t0 <= self.clock {
            pos += 1;
        }
        if pos + 1 == self.frames.len() && self.complete && self.clock > self.time(pos) - t0 + self.frame_len(pos) {
            // Loop.
            pos = 0;
            self.clock = 0.0;
        }
        self.pos = pos;
        let next = if pos + 1 < self.frames.len() { self.time(pos + 1) - t0 - self.clock } else { 1.0 / 30.0 };
        ctx.request_repaint_after(std::time::Duration::from_secs_f64(next.clamp(0.001, 0.1)));
    }

    fn time(&self, i: usize) -> f64 {
        self.frames[i].time_secs.unwrap_or(i as f64 / 30.0)
    }

    fn frame_len(&self, i: usize) -> f64 {
        if i + 1 < self.frames.len() {
            self.time(i + 1) - self.time(i)
        } else if i > 0 {
            self.time(i) - self.time(i - 1)
        } else {
            1.0 / 30.0
        }
    }

    /// Shows the frame at `secs` from the start (as far as it is loaded) and pauses there.
    pub fn seek_secs(&mut self, secs: f64) {
        if self.frames.is_empty() {
            return;
        }
        let t0 = self.time(0);
        let pos = (0..self.frames.len()).rev().find(|&i| self.time(i) - t0 <= secs + 1e-6).unwrap_or(0);
        self.playing = false;
        self.seek(pos);
    }

    fn seek(&mut self, pos: usize) {
        self.pos = pos.min(self.frames.len().saturating_sub(1));
        if !self.frames.is_empty() {
            self.clock = self.time(self.pos) - self.time(0);
        }
    }

    /// Draws the picture and its controls, `height` points high.
    pub fn show(&mut self, ui: &mut egui::Ui, height: f32) {
        self.advance(ui.ctx());
        super::error_line(ui, &self.error);
        let Some(path) = self.path.clone() else { return };
        if self.frames.is_empty() {
            if self.error.is_none() {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(format!("loading {}", path.display()));
                });
            }
            return;
        }
        if self.shown != Some(self.pos) {
            let f = &self.frames[self.pos];
            let img = egui::ColorImage::from_rgb([f.width as usize, f.height as usize], &f.data);
            match &mut self.texture {
                Some(t) => t.set(img, egui::TextureOptions::LINEAR),
                None => self.texture = Some(ui.ctx().load_texture("player", img, egui::TextureOptions::LINEAR)),
            }
            self.shown = Some(self.pos);
        }
        if let Some(t) = &self.texture {
            ui.add(egui::Image::new((t.id(), super::frames::fit_height(t, height))));
        }
        let last = self.frames.len() - 1;
        ui.horizontal(|ui| {
            let label = if self.playing { "Pause" } else { "Play" };
            if ui.button(label).clicked() {
                self.playing = !self.playing;
            }
            if ui.button("Previous frame").on_hover_text("one frame back").clicked() {
                self.playing = false;
                self.seek(self.pos.saturating_sub(1));
            }
            if ui.button("Next frame").on_hover_text("one frame on").clicked() {
                self.playing = false;
                self.seek(self.pos + 1);
            }
            let mut pos = self.pos;
            let l = ui.label("Position");
            let r = ui.add(egui::Slider::new(&mut pos, 0..=last).show_value(false)).labelled_by(l.id);
            if r.changed() {
                self.seek(pos);
            }
            if r.drag_started() {
                self.playing = false;
            }
            let t = self.time(self.pos) - self.time(0);
            ui.monospace(format!("frame {}/{}  {t:.2} s", self.pos + 1, self.frames.len()));
            if !self.complete {
                ui.spinner();
            } else if self.truncated {
                ui.label("(the first part of a long video)");
            }
        });
    }
}
