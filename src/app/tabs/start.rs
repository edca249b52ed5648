//! The first screen: three ways in for someone who has never trained a
//! model: the offline demo, their own videos, or a model to classify with.

use std::path::PathBuf;

use eframe::egui;

use super::command::{Command, Setting};
use super::{Env, Tab};
use crate::app::widgets::files::{path_field, Pick};

/// A big button: the way in, in large type.
fn big(ui: &mut egui::Ui, text: &str, enabled: bool) -> bool {
    let b = egui::Button::new(egui::RichText::new(text).size(20.0).strong()).min_size(egui::vec2(320.0, 44.0));
    ui.add_enabled(enabled, b).clicked()
}

/// Draws the Start page (its one field is the dataset folder, a setting).
pub fn show(ui: &mut egui::Ui, env: &Env) {
    ui.heading("Start here");
    ui.label("vidi teaches a video model to tell your clips apart, then sorts new videos with it. Pick one:");
    ui.add_space(8.0);
    let running = env.jobs.busy();
    let width = ui.available_width().min(760.0);
    ui.group(|ui| {
        ui.set_width(width);
        if big(ui, "Try the offline demo", !running) {
            env.commands.send(Command::RunDemo);
            env.commands.send(Command::ShowTab(Tab::Train));
        }
        ui.label(
            "Makes short videos of moving shapes, fine-tunes a tiny model on them and tests it: no download, \
             a few minutes. Every step shows on the Train tab; at the end, its test accuracy and what to do next.",
        );
        if running {
            ui.weak("(something is running: wait for it, or stop it on its tab)");
        }
    });
    ui.add_space(6.0);
    ui.group(|ui| {
        ui.set_width(width);
        let dir = env.settings.data_dir.clone();
        let go = big(ui, "Use my videos", true);
        ui.label(
            "A folder with one sub-folder of clips per class (walking/, running/, ...), or one already split \
             into train/, val/ and test/. vidi reads it, says whether it needs a split, and does the split for you.",
        );
        env.edit(&env.settings.data_dir, Setting::DataDir, |v| {
            path_field(ui, "Videos folder", v, "the folder of class folders", "start-videos", Pick::Folder)
        });
        if go {
            // With no folder yet, the Dataset tab asks for one (and offers the guide's dataset).
            if !dir.trim().is_empty() {
                env.commands.send(Command::OpenPaths(vec![PathBuf::from(dir.trim())]));
            }
            env.commands.send(Command::ShowTab(Tab::Dataset));
        }
    });
    ui.add_space(6.0);
    ui.group(|ui| {
        ui.set_width(width);
        if big(ui, "Classify videos with a model", true) {
            env.commands.send(Command::ShowTab(Tab::Classify));
        }
        ui.label(
            "Drop videos on the window, or choose them, and see what a trained model (a folder, or a name on \
             the Hugging Face Hub) says they show.",
        );
    });
}
