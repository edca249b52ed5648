//! The first screen: three ways in for someone who has never trained a
//! model: the offline demo, their own videos, or a model to classify with.

use eframe::egui;

use super::command::Command;
use super::{Env, Tab};

/// Draws the Start page (it holds no state of its own).
pub fn show(ui: &mut egui::Ui, env: &Env) {
    ui.heading("Start here");
    ui.label("vidi teaches a video model to tell your clips apart, then sorts new videos with it. Pick one:");
    ui.add_space(8.0);
    let running = env.jobs.busy();
    let way = |ui: &mut egui::Ui, button: &str, enabled: bool, what: &str| -> bool {
        ui.group(|ui| {
            ui.set_width(ui.available_width().min(720.0));
            let clicked = ui.add_enabled(enabled, egui::Button::new(button)).clicked();
            ui.label(what);
            clicked
        })
        .inner
    };
    if way(
        ui,
        "Try the offline demo",
        !running,
        "Makes short videos of moving shapes, fine-tunes a tiny model on them and tests it: \
         no download, about a minute. Shows every step on the Train tab.",
    ) {
        env.commands.send(Command::RunDemo);
        env.commands.send(Command::ShowTab(Tab::Train));
    }
    if way(
        ui,
        "Use my videos",
        true,
        "A folder with one sub-folder of clips per class, or already split into train/, val/ \
         and test/. The Dataset tab checks it: classes, clips per class, unreadable files.",
    ) {
        env.commands.send(Command::ShowTab(Tab::Dataset));
    }
    if way(
        ui,
        "Classify videos with a model",
        true,
        "Drop videos on the window, or choose them, and see what a trained model (a folder or \
         a Hub name) says they show.",
    ) {
        env.commands.send(Command::ShowTab(Tab::Classify));
    }
}
