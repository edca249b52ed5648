//! Plots: a training run's curves, and a confusion matrix.

use eframe::egui;

/// The loss, and the learning rate (scaled to its peak) with the validation
/// accuracy, side by side; points are `[step, value]`.
pub fn training(ui: &mut egui::Ui, loss: &[[f64; 2]], lr: &[[f64; 2]], val: &[[f64; 2]]) {
    use egui_plot::{Legend, Line, Plot, Points};
    ui.columns(2, |cols| {
        Plot::new("loss").height(180.0).legend(Legend::default()).show(&mut cols[0], |p| {
            p.line(Line::new("train loss", loss.to_vec()));
        });
        Plot::new("lr-acc").height(180.0).legend(Legend::default()).show(&mut cols[1], |p| {
            let peak = lr.iter().map(|v| v[1]).fold(0.0, f64::max).max(1e-12);
            p.line(Line::new("lr (scaled to peak)", lr.iter().map(|v| [v[0], v[1] / peak]).collect::<Vec<_>>()));
            p.points(Points::new("val accuracy", val.to_vec()).radius(4.0));
        });
    });
}

/// A confusion matrix (rows: true, columns: predicted), each cell shaded by
/// its share of the row. Returns the cell clicked.
pub fn confusion(ui: &mut egui::Ui, labels: &[String], confusion: &[Vec<usize>]) -> Option<(usize, usize)> {
    let mut clicked = None;
    egui::Grid::new("confusion").spacing([2.0, 2.0]).show(ui, |ui| {
        ui.label("");
        for j in 0..labels.len() {
            ui.label(j.to_string());
        }
        ui.end_row();
        for (i, row) in confusion.iter().enumerate() {
            ui.label(format!("{} ({i})", labels[i]));
            let total: usize = row.iter().sum::<usize>().max(1);
            for (j, &c) in row.iter().enumerate() {
                let t = c as f32 / total as f32;
                let [r, g, b] = crate::heatmap::shade(t);
                let fill = egui::Color32::from_rgb(r, g, b);
                let text = egui::RichText::new(c.to_string()).color(if t > 0.5 {
                    egui::Color32::WHITE
                } else {
                    egui::Color32::BLACK
                });
                if ui.add(egui::Button::new(text).fill(fill).min_size(egui::vec2(34.0, 24.0))).clicked() {
                    clicked = Some((i, j));
                }
            }
            ui.end_row();
        }
    });
    clicked
}
