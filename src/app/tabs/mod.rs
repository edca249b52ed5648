//! The Start page and the five tabs. Each holds its inputs, its results and the names of its
//! jobs; it draws from the settings and sends [`Command`]s for what should change.

mod augment;
mod classify;
mod command;
mod dataset;
mod evaluate;
mod live;
mod parts;
mod start;
mod train;

use std::path::PathBuf;

use eframe::egui;
use serde::{Deserialize, Serialize};

pub use command::{Command, CommandSender, Setting};

use super::jobs::Jobs;
use super::Settings;

/// The tabs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tab {
    /// The first screen: the ways in.
    Start,
    /// Open and inspect a dataset.
    Dataset,
    /// See the augmentations.
    Preview,
    /// Fine-tune.
    Train,
    /// Evaluate.
    Evaluate,
    /// Classify videos.
    Classify,
}

impl Tab {
    /// All tabs, in order.
    pub const ALL: [Tab; 6] = [Tab::Start, Tab::Dataset, Tab::Preview, Tab::Train, Tab::Evaluate, Tab::Classify];

    /// The tab's title.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Start => "Start here",
            Tab::Dataset => "Dataset",
            Tab::Preview => "Augmentation Preview",
            Tab::Train => "Train",
            Tab::Evaluate => "Evaluate",
            Tab::Classify => "Classify",
        }
    }
}

/// What a tab draws with: the app's state, read-only, and where to send commands.
pub struct Env<'a> {
    /// The settings.
    pub settings: &'a Settings,
    /// Where models compute.
    pub compute: &'a crate::backend::Compute,
    /// The Hub and its cache.
    pub hub: &'a crate::hub::HubSettings,
    /// The running jobs.
    pub jobs: &'a Jobs,
    /// Where commands go.
    pub commands: &'a CommandSender,
}

impl Env<'_> {
    /// Edits a copy of one setting with `edit` (a widget); a change is sent as
    /// `wrap(new)`. Returns what `edit` returned and the value as edited (for
    /// use in the same frame).
    fn edit<T: Clone + PartialEq, R>(
        &self,
        value: &T,
        wrap: fn(T) -> Setting,
        edit: impl FnOnce(&mut T) -> R,
    ) -> (R, T) {
        let mut v = value.clone();
        let r = edit(&mut v);
        if v != *value {
            self.commands.set(wrap(v.clone()));
        }
        (r, v)
    }
}

/// The state of every tab (kept when switching tabs: jobs go on).
#[derive(Default)]
pub struct Tabs {
    dataset: dataset::DatasetTab,
    augment: augment::AugmentTab,
    train: train::TrainTab,
    evaluate: evaluate::EvaluateTab,
    classify: classify::ClassifyTab,
}

impl Tabs {
    /// Draws `tab`.
    pub fn show(&mut self, tab: Tab, ui: &mut egui::Ui, env: &Env) {
        match tab {
            Tab::Start => start::show(ui, env),
            Tab::Dataset => self.dataset.show(ui, env),
            Tab::Preview => self.augment.show(ui, env),
            Tab::Train => {
                let imbalance = self.dataset.imbalance_of(&env.settings.data_source());
                self.train.show(ui, env, &imbalance)
            }
            Tab::Evaluate => self.evaluate.show(ui, env),
            Tab::Classify => self.classify.show(ui, env),
        }
    }

    /// Takes what the jobs sent (every frame, whichever tab shows).
    pub fn poll(&mut self, ctx: &egui::Context, jobs: &mut Jobs, commands: &CommandSender) {
        self.dataset.poll(ctx, jobs, commands);
        self.augment.poll(ctx, jobs);
        self.train.poll(jobs, commands);
        self.evaluate.poll(jobs, commands);
        self.classify.poll(jobs, commands);
    }

    /// Opens the dataset source `src` (its path is in the settings, or on its way there).
    pub fn open_dataset(&mut self, src: crate::dataset::DataSource) {
        self.dataset.open(src);
    }

    /// Runs the offline demo on the Train tab, in a new folder under the downloads folder.
    pub fn run_demo(&mut self, settings: &Settings, demo: &crate::demo::DemoOptions, commands: &CommandSender) {
        self.train.run_demo(settings, demo, commands);
    }

    /// Queues videos on the Classify tab.
    pub fn queue_videos(&mut self, files: Vec<PathBuf>) {
        self.classify.queue(files);
    }

    /// One line for the status bar.
    pub fn status(&self, jobs: &Jobs, busy: bool) -> String {
        match self.train.status(jobs) {
            Some(s) => s,
            None if busy => "working…".into(),
            None => "ready".into(),
        }
    }
}
