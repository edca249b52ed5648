//! Widgets that know nothing of the app: they take plain values, `&mut`
//! fields or closures, and return responses or events for their owner to act on.

pub mod files;
pub mod frames;
pub mod model_picker;
pub mod player;
pub mod plots;
pub mod share_box;
pub mod split_dialog;
pub mod timeline;

use eframe::egui;

use crate::video::RgbFrame;

/// The colour of error messages.
pub const ERROR: egui::Color32 = egui::Color32::from_rgb(200, 40, 40);

/// The colour of warnings (data that may mislead, results out of date).
pub const WARNING: egui::Color32 = egui::Color32::from_rgb(200, 120, 0);

/// A warning.
pub fn warning_text(ui: &mut egui::Ui, w: &str) {
    ui.colored_label(WARNING, w);
}

/// An error message.
pub fn error_text(ui: &mut egui::Ui, e: &str) {
    ui.colored_label(ERROR, e);
}

/// The error message, if there is one.
pub fn error_line(ui: &mut egui::Ui, err: &Option<String>) {
    if let Some(e) = err {
        error_text(ui, e);
    }
}

/// A label and a number field named by it (for screen readers and tests).
pub fn number<T: egui::emath::Numeric>(ui: &mut egui::Ui, label: &str, v: &mut T, range: std::ops::RangeInclusive<T>) {
    let l = ui.label(label);
    ui.add(egui::DragValue::new(v).range(range)).labelled_by(l.id);
}

/// A label and a one-line text field named by it, `width` points wide.
pub fn labelled_text(ui: &mut egui::Ui, label: &str, value: &mut String, hint: &str, width: f32) -> egui::Response {
    let l = ui.label(label);
    ui.add(egui::TextEdit::singleline(value).hint_text(hint).desired_width(width)).labelled_by(l.id)
}

/// `done` of `total` as a fraction for a progress bar (0 while the total is unknown).
pub fn fraction(done: u64, total: u64) -> f32 {
    if total > 0 {
        done as f32 / total as f32
    } else {
        0.0
    }
}

/// A frame scaled to `height` pixels high (for strips and the player).
pub fn small(f: &RgbFrame, height: u32) -> RgbFrame {
    if f.height <= height {
        return f.clone();
    }
    let w = (f.width as u64 * height as u64 / f.height as u64).max(1) as usize;
    crate::dataset::transforms::pil_resize_bilinear(f, w, height as usize)
}
