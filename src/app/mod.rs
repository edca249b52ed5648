//! The desktop app: five tabs over the engine (Dataset, Augmentation
//! Preview, Train, Evaluate, Classify). Every long job runs on a named worker
//! thread in the one job registry (`jobs`) and reports through a bounded
//! channel; the UI only polls, so it never blocks. The tabs ask for changes
//! with commands (`tabs::Command`), handled in one place (`VidiApp::handle`).
//!
//! Layers: `widgets` know nothing of the app; `jobs` is the registry; `tabs`
//! use both (never each other); this module owns the state and handles the commands.

mod jobs;
mod tabs;
mod widgets;

use std::path::PathBuf;

use eframe::egui;
use serde::{Deserialize, Serialize};

pub use tabs::Tab;
use tabs::{Command, CommandSender};

/// What the app remembers between runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Last dataset folder (or annotation file).
    pub data_dir: String,
    /// Split lists that go with `data_dir` (UCF101's, HMDB51's, mmaction2's).
    pub data_lists: DataLists,
    /// The base model Train fine-tunes (folder or Hub id).
    pub model: String,
    /// The model Evaluate and Classify use (folder or Hub id; one field, shared by the two tabs).
    pub use_model: String,
    /// Last run folder.
    pub run_dir: String,
    /// Last previewed video.
    pub video: String,
    /// Training settings.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Gradient accumulation.
    pub grad_accum: usize,
    /// Learning rate.
    pub lr: f64,
    /// Seed.
    pub seed: u64,
    /// Last tab.
    pub tab: Tab,
    /// Where downloaded datasets go.
    pub downloads: String,
}

/// The classes file and split lists of a dataset given as a videos folder
/// with lists (`vidi ... --classes --train --val --test`); empty when unused.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataLists {
    /// `classInd.txt`, or a file of one class name per line.
    pub classes: String,
    /// The train split's list.
    pub train: String,
    /// The val split's list.
    pub val: String,
    /// The test split's list.
    pub test: String,
}

impl DataLists {
    /// Whether no list is given.
    pub fn is_empty(&self) -> bool {
        *self == DataLists::default()
    }
}

impl Settings {
    /// The dataset source the Dataset, Train and Evaluate tabs read: the
    /// folder or annotation file, with its lists.
    pub fn data_source(&self) -> crate::dataset::DataSource {
        let path = |s: &str| (!s.trim().is_empty()).then(|| PathBuf::from(s.trim()));
        let l = &self.data_lists;
        crate::dataset::DataSource {
            path: PathBuf::from(self.data_dir.trim()),
            classes: path(&l.classes),
            train: path(&l.train).into_iter().collect(),
            val: path(&l.val).into_iter().collect(),
            test: path(&l.test).into_iter().collect(),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        let t = crate::train::TrainConfig::default();
        Settings {
            data_dir: String::new(),
            data_lists: DataLists::default(),
            model: t.model,
            use_model: String::new(),
            run_dir: "vidi-run".into(),
            video: String::new(),
            epochs: t.epochs,
            batch_size: t.batch_size,
            grad_accum: t.grad_accum,
            lr: t.lr,
            seed: t.seed,
            tab: Tab::Start,
            downloads: std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join("vidi-data"))
                .unwrap_or_else(|| PathBuf::from("vidi-data"))
                .to_string_lossy()
                .into_owned(),
        }
    }
}

/// The app's state.
pub struct VidiApp {
    /// Remembered settings.
    pub settings: Settings,
    /// Where models compute, as the status bar says it.
    pub compute: crate::backend::Compute,
    /// The Hub and its cache (the environment's defaults unless set).
    pub hub: crate::hub::HubSettings,
    tabs: tabs::Tabs,
    jobs: jobs::Jobs,
    commands: CommandSender,
    /// What the offline demo makes and how long it trains (tests make it small).
    pub demo: crate::demo::DemoOptions,
}

impl VidiApp {
    /// The app with `settings`, computing on `compute`; `files` (from the command line) are queued.
    pub fn new(settings: Settings, compute: crate::backend::Compute, files: Vec<PathBuf>) -> VidiApp {
        let mut app = VidiApp {
            settings,
            compute,
            hub: Default::default(),
            tabs: Default::default(),
            jobs: Default::default(),
            commands: Default::default(),
            demo: Default::default(),
        };
        app.open_paths(files);
        app
    }

    /// Folders open on the Dataset tab; files are queued on the Classify tab
    /// (on the next frame, before it is drawn).
    pub fn open_paths(&mut self, paths: Vec<PathBuf>) {
        if !paths.is_empty() {
            self.commands.send(Command::OpenPaths(paths));
        }
    }

    /// Handles the commands sent since the last frame (and any they send).
    fn handle_commands(&mut self, ctx: &egui::Context) {
        loop {
            let commands = self.commands.take();
            if commands.is_empty() {
                return;
            }
            ctx.request_repaint();
            for c in commands {
                self.handle(ctx, c);
            }
        }
    }

    /// The one place commands are handled.
    fn handle(&mut self, ctx: &egui::Context, command: Command) {
        match command {
            Command::ShowTab(t) => self.settings.tab = t,
            Command::Set(s) => s.apply(&mut self.settings),
            Command::OpenPaths(paths) => {
                let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) = paths.into_iter().partition(|p| p.is_dir());
                // A folder, or an annotation file, opens as the dataset (without lists);
                // videos are classified.
                let (lists, files): (Vec<PathBuf>, Vec<PathBuf>) =
                    files.into_iter().partition(|p| widgets::files::is_list_file(p));
                if let Some(d) = dirs.into_iter().chain(lists).next() {
                    self.settings.data_dir = d.to_string_lossy().into_owned();
                    self.settings.data_lists = DataLists::default();
                    self.tabs.open_dataset(self.settings.data_source());
                    self.settings.tab = Tab::Dataset;
                }
                if !files.is_empty() {
                    self.tabs.queue_videos(files);
                    self.settings.tab = Tab::Classify;
                }
            }
            Command::StartJob(job) => {
                // The UI offers no way to start a job twice; a refusal is only reported.
                if let Err(e) = self.jobs.start(ctx, job) {
                    eprintln!("vidi: {e}");
                }
            }
            Command::RunDemo => self.tabs.run_demo(&self.settings, &self.demo, &self.commands),
            Command::StopJob(name) => self.jobs.stop(&name),
            Command::DropJob(name) => self.jobs.abandon(&name),
            Command::Trained(dir) => self.settings.use_model = dir.to_string_lossy().into_owned(),
            Command::GpuLost(when) => self.compute = cpu_because(&format!("the GPU was lost {when}")),
        }
    }

    /// Draws the whole app into `ui`.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let dropped: Vec<PathBuf> = ui.ctx().input(|i| {
            i.raw.dropped_files.iter().map(|f| f.path().to_path_buf()).filter(|p| !p.as_os_str().is_empty()).collect()
        });
        self.open_paths(dropped);
        egui::Panel::top("vidi-tabs").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading("vidi");
                ui.separator();
                for t in Tab::ALL {
                    if ui.selectable_label(self.settings.tab == t, t.title()).clicked() {
                        self.commands.send(Command::ShowTab(t));
                    }
                }
            });
        });
        // Once a frame: what the tabs sent last frame, what was dropped, and the tab chosen above.
        self.handle_commands(ui.ctx());
        let busy = self.busy();
        egui::Panel::bottom("vidi-status").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(format!("Compute: {}", self.compute.description));
                ui.separator();
                ui.label(self.tabs.status(&self.jobs, busy));
            });
        });
        let env = tabs::Env {
            settings: &self.settings,
            compute: &self.compute,
            hub: &self.hub,
            jobs: &self.jobs,
            commands: &self.commands,
        };
        let (tab, tabs) = (self.settings.tab, &mut self.tabs);
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| tabs.show(tab, ui, &env));
        });
        self.tabs.poll(ui.ctx(), &mut self.jobs, &self.commands);
        if !self.commands.is_empty() {
            // Handled in the next frame, before the tab is drawn.
            ui.ctx().request_repaint();
        }
    }

    /// Whether any job is running or about to start.
    pub fn busy(&self) -> bool {
        self.jobs.busy() || self.commands.starts_job()
    }
}

struct EframeApp(VidiApp);

impl eframe::App for EframeApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.0.show(ui);
        // eframe auto-saves after a frame: an idle window still draws one every few seconds.
        ui.ctx().request_repaint_after(self.auto_save_interval());
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.0.settings);
    }

    /// Settings and the window's place are saved every few seconds (and on exit),
    /// so a crash or a power cut loses little.
    fn auto_save_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(5)
    }
}

/// The window icon (assets/icons/vidi-256.png, built in).
fn icon() -> egui::IconData {
    let png = include_bytes!("../../assets/icons/vidi-256.png");
    match image::load_from_memory_with_format(png, image::ImageFormat::Png) {
        Ok(img) => {
            let rgba = img.into_rgba8();
            egui::IconData { width: rgba.width(), height: rgba.height(), rgba: rgba.into_raw() }
        }
        Err(_) => egui::IconData::default(),
    }
}

/// Why the window's device could not be made for sharing with the models, when it could not.
static NOT_SHARED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// How eframe creates its wgpu device. When models may compute on the GPU
/// (`choice` is not Cpu) and the adapter is a real GPU — or `choice` is Gpu,
/// whatever the adapter — the device is asked for the adapter's full features
/// and limits, which Burn's wgpu backend needs to compute on that same device.
pub fn wgpu_setup(choice: crate::backend::DeviceChoice) -> eframe::egui_wgpu::WgpuSetup {
    use crate::backend::DeviceChoice;
    let mut new = eframe::egui_wgpu::WgpuSetupCreateNew::without_display_handle();
    let default = new.device_descriptor.clone();
    new.device_descriptor = std::sync::Arc::new(move |adapter: &wgpu::Adapter| {
        let real = crate::backend::is_real_gpu(adapter.get_info().device_type);
        let share = choice == DeviceChoice::Gpu || (choice == DeviceChoice::Auto && real);
        if !share {
            return default(adapter);
        }
        let shared = crate::backend::device::shared_device_descriptor(adapter.features(), adapter.limits());
        // A device the adapter refuses would keep the window from opening: it
        // opens on the default device instead, and the models use the CPU.
        match crate::backend::device::try_device(adapter, &shared) {
            Ok(()) => shared,
            Err(why) => {
                let _ = NOT_SHARED.set(why);
                default(adapter)
            }
        }
    });
    eframe::egui_wgpu::WgpuSetup::CreateNew(new)
}

/// Where the app's models compute: on the window's own wgpu device when it is
/// a real GPU (or `choice` is Gpu), else on the CPU backend (faster than a
/// software adapter). Never fails: a GPU that cannot be shared means the CPU.
pub fn compute_for(
    render_state: Option<&eframe::egui_wgpu::RenderState>,
    choice: crate::backend::DeviceChoice,
) -> crate::backend::Compute {
    use crate::backend::DeviceChoice;
    let Some(rs) = render_state else { return crate::backend::cpu() };
    let real = crate::backend::is_real_gpu(rs.adapter.get_info().device_type);
    if choice == DeviceChoice::Cpu || (choice == DeviceChoice::Auto && !real) {
        return crate::backend::cpu();
    }
    if let Some(why) = NOT_SHARED.get() {
        return cpu_because(&format!("the GPU could not be shared with the window: {why}"));
    }
    match crate::backend::on_wgpu_device(&rs.instance, &rs.adapter, &rs.device, &rs.queue) {
        Ok(c) => {
            // The window's frames share the queue: models' work goes in paced.
            crate::backend::ops::pace_for_window(true);
            c
        }
        Err(e) => cpu_because(&format!("the GPU could not be shared: {e}")),
    }
}

/// The CPU backend, its description saying why the models are there.
fn cpu_because(why: &str) -> crate::backend::Compute {
    let mut c = crate::backend::cpu();
    c.description = format!("{} ({why})", c.description);
    c
}

/// Opens the window (`vidi` with no subcommand). `files` are queued as `vidi FILE...` asks.
pub fn run(files: Vec<PathBuf>) -> Result<(), String> {
    let choice = crate::backend::choice_from(None).unwrap_or_default();
    let mut options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1200.0, 820.0])
            .with_title("vidi")
            .with_app_id("vidi")
            .with_icon(icon()),
        ..Default::default()
    };
    options.wgpu_options.wgpu_setup = wgpu_setup(choice);
    eframe::run_native(
        "vidi",
        options,
        Box::new(move |cc| {
            let settings: Settings = cc.storage.and_then(|s| eframe::get_value(s, eframe::APP_KEY)).unwrap_or_default();
            let compute = compute_for(cc.wgpu_render_state.as_ref(), choice);
            eprintln!("vidi: models compute on {}", compute.description);
            Ok(Box::new(EframeApp(VidiApp::new(settings, compute, files))))
        }),
    )
    .map_err(|e| e.to_string())
}
