//! Plots: a training run's curves, and a confusion matrix.

use eframe::egui;

/// The loss, and the learning rate (scaled to its peak) with the validation
/// accuracy, side by side; points are `[step, value]`. The mouse wheel scrolls
/// the page, not the plots (drag pans them; "Reset view" or a double click
/// shows all again); the legends sit in room kept free above the curves.
/// The plots' ids are `Id::NULL.with(("vidi-plot", "loss"))` and `("vidi-plot", "lr-acc")`.
pub fn training(ui: &mut egui::Ui, loss: &[[f64; 2]], lr: &[[f64; 2]], val: &[[f64; 2]]) {
    use egui_plot::{Corner, Legend, Line, Plot, Points};
    let reset = ui.small_button("Reset view").on_hover_text("show the whole of both curves again").clicked();
    let plot = |id: &str, y: &str| {
        let p = Plot::new(id.to_string())
            .id(egui::Id::NULL.with(("vidi-plot", id)))
            .height(180.0)
            .legend(Legend::default().position(Corner::RightTop))
            .allow_scroll(false)
            .allow_zoom(false)
            .x_axis_label("step")
            .y_axis_label(y.to_string())
            .include_y(0.0);
        if reset {
            p.reset()
        } else {
            p
        }
    };
    // Head-room over the highest point, where the legend goes.
    let top = |pts: &[[f64; 2]]| pts.iter().map(|v| v[1]).fold(0.0, f64::max) * 1.45;
    ui.columns(2, |cols| {
        plot("loss", "loss").include_y(top(loss)).show(&mut cols[0], |p| {
            p.line(Line::new("train loss", loss.to_vec()));
        });
        plot("lr-acc", "share of 1").include_y(1.45).show(&mut cols[1], |p| {
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
        ui.label("true \\ predicted");
        for l in labels {
            // Class names over the columns, shortened to fit a cell.
            let short: String = if l.chars().count() > 10 {
                l.chars().take(9).chain(std::iter::once('…')).collect()
            } else {
                l.clone()
            };
            ui.label(short).on_hover_text(l);
        }
        ui.end_row();
        for (i, row) in confusion.iter().enumerate() {
            ui.label(&labels[i]);
            let total: usize = row.iter().sum::<usize>().max(1);
            for (j, &c) in row.iter().enumerate() {
                let t = c as f32 / total as f32;
                // Right answers (the diagonal) in the heat-map's shades; mistakes in red.
                let fill = if i != j && c > 0 {
                    egui::Color32::from_rgb(255, (200.0 * (1.0 - t)) as u8 + 20, (200.0 * (1.0 - t)) as u8 + 20)
                } else {
                    let [r, g, b] = crate::heatmap::shade(t);
                    egui::Color32::from_rgb(r, g, b)
                };
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
