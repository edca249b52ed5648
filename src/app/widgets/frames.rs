//! Frames on screen: textures made from decoded frames, and a strip of them.

use eframe::egui;

use crate::video::RgbFrame;

/// One texture per frame, named `name-i`.
pub fn textures(ctx: &egui::Context, name: &str, frames: &[RgbFrame]) -> Vec<egui::TextureHandle> {
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let img = egui::ColorImage::from_rgb([f.width as usize, f.height as usize], &f.data);
            ctx.load_texture(format!("{name}-{i}"), img, egui::TextureOptions::LINEAR)
        })
        .collect()
}

/// The size `t` shows at, `height` points high.
pub fn fit_height(t: &egui::TextureHandle, height: f32) -> egui::Vec2 {
    let [w, h] = t.size();
    egui::vec2(height * w as f32 / h.max(1) as f32, height)
}

/// The frames side by side (wrapping), `height` points high.
pub fn strip(ui: &mut egui::Ui, tex: &[egui::TextureHandle], height: f32) {
    ui.horizontal_wrapped(|ui| {
        for t in tex {
            ui.add(egui::Image::new((t.id(), fit_height(t, height))));
        }
    });
}
