//! The confusion matrix as a labelled PNG heat-map (cells shaded by the
//! row-normalised rate, with their counts; rows are true labels, columns
//! predicted, both labelled).

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use image::{Rgb, RgbImage};

const CELL: u32 = 40;
const PAD: u32 = 12;
const TEXT_PX: f32 = 15.0;

struct Painter<'a> {
    font: FontRef<'a>,
    img: RgbImage,
}

impl Painter<'_> {
    fn text_width(&self, s: &str) -> f32 {
        let f = self.font.as_scaled(PxScale::from(TEXT_PX));
        s.chars().map(|c| f.h_advance(f.glyph_id(c))).sum()
    }

    /// Draws `s` with its baseline-left corner at (x, y), in `color`.
    fn text(&mut self, s: &str, x: f32, y: f32, color: [u8; 3]) {
        let scale = PxScale::from(TEXT_PX);
        let mut pen = x;
        let (w, h) = self.img.dimensions();
        for c in s.chars() {
            let id = self.font.glyph_id(c);
            let glyph = id.with_scale_and_position(scale, point(pen, y));
            pen += self.font.as_scaled(scale).h_advance(id);
            let Some(outline) = self.font.outline_glyph(glyph) else { continue };
            let b = outline.px_bounds();
            let img = &mut self.img;
            outline.draw(|gx, gy, cov| {
                let (px, py) = (b.min.x as i64 + gx as i64, b.min.y as i64 + gy as i64);
                if px < 0 || py < 0 || px >= w as i64 || py >= h as i64 {
                    return;
                }
                let p = img.get_pixel_mut(px as u32, py as u32);
                for k in 0..3 {
                    p.0[k] = (p.0[k] as f32 * (1.0 - cov) + color[k] as f32 * cov).round() as u8;
                }
            });
        }
    }

    fn rect(&mut self, x: u32, y: u32, w: u32, h: u32, color: [u8; 3]) {
        for yy in y..(y + h).min(self.img.height()) {
            for xx in x..(x + w).min(self.img.width()) {
                self.img.put_pixel(xx, yy, Rgb(color));
            }
        }
    }
}

/// The cell colour for a row-normalised rate in 0..=1: white to deep blue.
pub fn shade(rate: f32) -> [u8; 3] {
    [(255.0 - 222.0 * rate) as u8, (255.0 - 180.0 * rate) as u8, (255.0 - 75.0 * rate) as u8]
}

/// PNG bytes of the heat-map of `confusion[true][predicted]`.
pub fn confusion_png(labels: &[String], confusion: &[Vec<usize>]) -> Result<Vec<u8>, String> {
    let font = FontRef::try_from_slice(epaint_default_fonts::UBUNTU_LIGHT).map_err(|e| e.to_string())?;
    let k = labels.len() as u32;
    let mut p = Painter { font, img: RgbImage::new(1, 1) };
    let row_labels: Vec<String> = labels.iter().enumerate().map(|(i, l)| format!("{l} ({i})")).collect();
    let label_w = row_labels.iter().map(|l| p.text_width(l)).fold(0f32, f32::max).ceil() as u32;
    let title = "Confusion matrix: rows true label, columns predicted (index)";
    let left = PAD + label_w + PAD;
    let top = PAD + 2 * CELL;
    let width = (left + k * CELL + PAD).max(p.text_width(title).ceil() as u32 + 2 * PAD);
    let height = top + k * CELL + PAD;
    p.img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    p.text(title, PAD as f32, PAD as f32 + TEXT_PX, [0, 0, 0]);
    for j in 0..k {
        let s = j.to_string();
        let x = left as f32 + j as f32 * CELL as f32 + (CELL as f32 - p.text_width(&s)) / 2.0;
        p.text(&s, x, (top - 10) as f32, [60, 60, 60]);
    }
    for (i, row) in confusion.iter().enumerate() {
        let i = i as u32;
        let y = top + i * CELL;
        let lw = p.text_width(&row_labels[i as usize]);
        p.text(&row_labels[i as usize], left as f32 - PAD as f32 - lw, y as f32 + CELL as f32 / 2.0 + 5.0, [0, 0, 0]);
        let total: usize = row.iter().sum();
        for (j, &c) in row.iter().enumerate() {
            let j = j as u32;
            let rate = if total > 0 { c as f32 / total as f32 } else { 0.0 };
            let shade = shade(rate);
            let x = left + j * CELL;
            p.rect(x, y, CELL, CELL, shade);
            p.rect(x, y, CELL, 1, [200, 200, 200]);
            p.rect(x, y, 1, CELL, [200, 200, 200]);
            if c > 0 {
                let s = c.to_string();
                let color = if rate > 0.5 { [255, 255, 255] } else { [0, 0, 0] };
                let tx = x as f32 + (CELL as f32 - p.text_width(&s)) / 2.0;
                p.text(&s, tx, y as f32 + CELL as f32 / 2.0 + 5.0, color);
            }
        }
    }
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(p.img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    Ok(out)
}
