//! A strip with one coloured block per window (its top label's colour), the
//! scores on hover, and a legend; a click on a block names its start time.

use eframe::egui;

use crate::infer::Prediction;

/// Distinct colours for labels (cycled past the end).
const PALETTE: [egui::Color32; 10] = [
    egui::Color32::from_rgb(31, 119, 180),
    egui::Color32::from_rgb(255, 127, 14),
    egui::Color32::from_rgb(44, 160, 44),
    egui::Color32::from_rgb(214, 39, 40),
    egui::Color32::from_rgb(148, 103, 189),
    egui::Color32::from_rgb(140, 86, 75),
    egui::Color32::from_rgb(227, 119, 194),
    egui::Color32::from_rgb(127, 127, 127),
    egui::Color32::from_rgb(188, 189, 34),
    egui::Color32::from_rgb(23, 190, 207),
];

/// The colour of `label`: by its place in the model's labels, so a label
/// keeps its colour across videos.
pub fn label_colour(labels: &[String], label: &str) -> egui::Color32 {
    let i = labels.iter().position(|l| l == label).unwrap_or(0);
    PALETTE[i % PALETTE.len()]
}

/// One block of the strip.
pub struct Block<'a> {
    /// Seconds.
    pub start_s: f64,
    /// Seconds.
    pub end_s: f64,
    /// Highest first.
    pub predictions: &'a [Prediction],
}

/// Draws the strip `width` points wide over `[0, duration]` seconds and its
/// legend; returns the start of the block clicked. `name` is its accessible name.
pub fn strip(
    ui: &mut egui::Ui,
    name: &str,
    blocks: &[Block],
    labels: &[String],
    duration: f64,
    width: f32,
) -> Option<f64> {
    let (rect, response) = ui.allocate_exact_size(egui::vec2(width, 18.0), egui::Sense::click());
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, name));
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, ui.visuals().extreme_bg_color);
    let duration = duration.max(1e-6);
    let x = |t: f64| rect.left() + (t / duration).clamp(0.0, 1.0) as f32 * rect.width();
    let mut hovered: Option<&Block> = None;
    let pointer = response.hover_pos();
    for b in blocks {
        let Some(top) = b.predictions.first() else { continue };
        let r = egui::Rect::from_x_y_ranges(x(b.start_s)..=x(b.end_s).max(x(b.start_s) + 1.0), rect.y_range());
        painter.rect_filled(r, 0.0, label_colour(labels, &top.label));
        if pointer.is_some_and(|p| r.contains(p)) {
            hovered = Some(b);
        }
    }
    let mut clicked = None;
    if let Some(b) = hovered {
        let text: Vec<String> = b.predictions.iter().map(|p| format!("{}  {:.3}", p.label, p.score)).collect();
        let tip = format!("{:.2} to {:.2} s\n{}", b.start_s, b.end_s, text.join("\n"));
        let start = b.start_s;
        if response.clicked() {
            clicked = Some(start);
        }
        response.on_hover_text(tip);
    }
    // The legend: the labels that are some block's top label, in the model's order.
    let mut seen: Vec<&str> = Vec::new();
    for b in blocks {
        if let Some(top) = b.predictions.first() {
            if !seen.contains(&top.label.as_str()) {
                seen.push(&top.label);
            }
        }
    }
    seen.sort_by_key(|l| labels.iter().position(|x| x == l).unwrap_or(usize::MAX));
    ui.horizontal_wrapped(|ui| {
        for l in seen {
            let (r, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
            ui.painter().rect_filled(r, 2.0, label_colour(labels, l));
            ui.label(l);
        }
    });
    clicked
}
