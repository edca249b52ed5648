//! What the UI asks the app to do. Tabs send [`Command`]s through the
//! [`CommandSender`] they are lent; `VidiApp` takes them all once a frame,
//! before the tab is drawn, and handles them in one place (`VidiApp::handle`).

use std::cell::RefCell;
use std::path::PathBuf;

use super::Tab;
use crate::app::jobs::Start;
use crate::app::Settings;

/// A change of one remembered setting.
#[derive(Clone, Debug, PartialEq)]
pub enum Setting {
    /// The dataset folder (or annotation file).
    DataDir(String),
    /// The split lists that go with the dataset folder.
    DataLists(crate::app::DataLists),
    /// Train's base model (folder or Hub id).
    Model(String),
    /// The model Evaluate and Classify use.
    UseModel(String),
    /// The run folder.
    RunDir(String),
    /// The previewed video.
    Video(String),
    /// Training epochs.
    Epochs(usize),
    /// Batch size.
    BatchSize(usize),
    /// Gradient accumulation.
    GradAccum(usize),
    /// Learning rate.
    Lr(f64),
    /// Seed.
    Seed(u64),
}

impl Setting {
    /// Writes the change into `s`.
    pub fn apply(self, s: &mut Settings) {
        match self {
            Setting::DataDir(v) => s.data_dir = v,
            Setting::DataLists(v) => s.data_lists = v,
            Setting::Model(v) => s.model = v,
            Setting::UseModel(v) => s.use_model = v,
            Setting::RunDir(v) => s.run_dir = v,
            Setting::Video(v) => s.video = v,
            Setting::Epochs(v) => s.epochs = v,
            Setting::BatchSize(v) => s.batch_size = v,
            Setting::GradAccum(v) => s.grad_accum = v,
            Setting::Lr(v) => s.lr = v,
            Setting::Seed(v) => s.seed = v,
        }
    }
}

/// Something the UI asks for.
pub enum Command {
    /// Show a tab.
    ShowTab(Tab),
    /// Change a setting.
    Set(Setting),
    /// Folders and annotation files open on the Dataset tab; videos are queued on the Classify tab.
    OpenPaths(Vec<PathBuf>),
    /// Run the offline demo (on the Train tab).
    RunDemo,
    /// Start a job (refused while one of its name runs).
    StartJob(Start),
    /// Ask a job to stop.
    StopJob(String),
    /// Ask a job to stop and forget it (what it still sends is dropped).
    DropJob(String),
    /// A training run (or the demo) finished with its best model in this folder:
    /// Evaluate and Classify use it from now on.
    Trained(PathBuf),
    /// The models' GPU was lost (when, in words): they compute on the CPU from now on.
    GpuLost(String),
}

/// The queue the UI sends commands into.
#[derive(Default)]
pub struct CommandSender {
    queue: RefCell<Vec<Command>>,
}

impl CommandSender {
    /// Queues `c`.
    pub fn send(&self, c: Command) {
        self.queue.borrow_mut().push(c);
    }

    /// Queues a change of a setting.
    pub fn set(&self, s: Setting) {
        self.send(Command::Set(s));
    }

    /// Queues the start of a job.
    pub fn start(&self, job: Start) {
        self.send(Command::StartJob(job));
    }

    /// Queues the start of a job in place of the one of its name, if any.
    pub fn restart(&self, job: Start) {
        self.send(Command::DropJob(job.name().to_string()));
        self.start(job);
    }

    /// Takes everything queued.
    pub fn take(&self) -> Vec<Command> {
        std::mem::take(&mut *self.queue.borrow_mut())
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.borrow().is_empty()
    }

    /// Whether a job start is queued.
    pub fn starts_job(&self) -> bool {
        self.queue.borrow().iter().any(|c| matches!(c, Command::StartJob(_)))
    }
}
