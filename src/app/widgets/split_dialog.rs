//! The Split dialog: ratios, seed and output folder for splitting a flat
//! folder of class folders, with a preview of the counts per split and class
//! (the split's own plan, before anything is written). A non-empty output
//! folder is offered a new name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use eframe::egui;

use crate::dataset::split::{plan_split, SplitOptions};
use crate::dataset::DatasetIndex;

/// The dialog's state.
pub struct SplitDialog {
    /// Percent of each class for val and for test.
    val: u32,
    test: u32,
    seed: u64,
    out: String,
}

impl Default for SplitDialog {
    fn default() -> Self {
        let d = SplitOptions::default();
        SplitDialog {
            val: (d.val * 100.0).round() as u32,
            test: (d.test * 100.0).round() as u32,
            seed: d.seed,
            out: String::new(),
        }
    }
}

/// Whether `p` names a folder that holds something.
fn non_empty(p: &Path) -> bool {
    std::fs::read_dir(p).map(|mut d| d.next().is_some()).unwrap_or(false)
}

/// `<src>_split`, else `<src>_split-2`, ... : the first that is missing or empty.
pub fn default_out(src: &Path) -> PathBuf {
    let base = format!("{}_split", src.to_string_lossy().trim_end_matches('/'));
    (1..1000)
        .map(|i| PathBuf::from(if i == 1 { base.clone() } else { format!("{base}-{i}") }))
        .find(|p| !non_empty(p))
        .unwrap_or_else(|| PathBuf::from(base))
}

/// split -> class -> videos, as the split would write them.
pub fn preview(index: &DatasetIndex, opts: &SplitOptions) -> BTreeMap<String, BTreeMap<String, usize>> {
    let items: Vec<_> = index.samples.iter().map(|s| (s.class.clone(), s.path.clone(), s.group.clone())).collect();
    let mut counts: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (split, class, _) in plan_split(&items, opts) {
        *counts.entry(split).or_default().entry(class).or_default() += 1;
    }
    counts
}

impl SplitDialog {
    /// The options as chosen.
    pub fn options(&self) -> SplitOptions {
        SplitOptions {
            val: self.val as f64 / 100.0,
            test: self.test as f64 / 100.0,
            seed: self.seed,
            ..Default::default()
        }
    }

    /// Draws the dialog for the flat folder `index` (at `src`). Returns the
    /// output folder and the options when "Split" is pressed. `enabled`: no job runs.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        src: &Path,
        index: &DatasetIndex,
        enabled: bool,
    ) -> Option<(PathBuf, SplitOptions)> {
        if self.out.is_empty() {
            self.out = default_out(src).to_string_lossy().into_owned();
        }
        let mut go = None;
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.strong("Split into train / val / test");
            ui.label(
                "Each class is shared out on its own; clips of one group (v_Class_gNN_...) stay together, so \
                 no scene is both learnt and tested. The files are linked, not copied: no extra space.",
            );
            ui.horizontal(|ui| {
                super::number(ui, "val %", &mut self.val, 0..=50);
                super::number(ui, "test %", &mut self.test, 0..=50);
                super::number(ui, "seed", &mut self.seed, 0..=u64::MAX);
            });
            super::files::path_field(
                ui,
                "Output folder",
                &mut self.out,
                "a new folder",
                "split-out",
                super::files::Pick::Folder,
            );
            let out = PathBuf::from(self.out.trim());
            let taken = non_empty(&out);
            if taken {
                let other = default_out(src);
                ui.horizontal(|ui| {
                    super::warning_text(ui, &format!("{} is not empty.", out.display()));
                    if ui.button(format!("Use {} instead", other.display())).clicked() {
                        self.out = other.to_string_lossy().into_owned();
                    }
                });
            }
            let opts = self.options();
            let ok_ratios = self.val + self.test < 100;
            if !ok_ratios {
                super::error_text(ui, "val % and test % must leave some clips for training.");
            }
            ui.label("What the split will write (videos per split and class):");
            let counts = preview(index, &opts);
            egui::Grid::new("split-preview").striped(true).show(ui, |ui| {
                ui.strong("class");
                for sp in ["train", "val", "test"] {
                    ui.strong(sp);
                }
                ui.end_row();
                for c in &index.classes {
                    ui.label(c);
                    for sp in ["train", "val", "test"] {
                        ui.label(counts.get(sp).and_then(|m| m.get(c)).copied().unwrap_or(0).to_string());
                    }
                    ui.end_row();
                }
            });
            let can = enabled && ok_ratios && !taken && !self.out.trim().is_empty();
            if ui.add_enabled(can, egui::Button::new("Split")).clicked() {
                go = Some((out, opts));
            }
        });
        go
    }
}
