//! The desktop app: five tabs over the engine (Dataset, Augmentation
//! Preview, Train, Evaluate, Classify). Every long job runs on a named worker
//! thread and reports through a channel; the UI only polls, so it never blocks.

mod models;
mod player;
mod tabs;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;

use eframe::egui;
use serde::{Deserialize, Serialize};

pub use tabs::Tab;

/// What the app remembers between runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Last dataset folder.
    pub data_dir: String,
    /// Last model (folder or Hub id).
    pub model: String,
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

impl Default for Settings {
    fn default() -> Self {
        let t = crate::train::TrainConfig::default();
        Settings {
            data_dir: String::new(),
            model: t.model,
            run_dir: "vidi-run".into(),
            video: String::new(),
            epochs: t.epochs,
            batch_size: t.batch_size,
            grad_accum: t.grad_accum,
            lr: t.lr,
            seed: t.seed,
            tab: Tab::Dataset,
            downloads: std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join("vidi-data"))
                .unwrap_or_else(|| PathBuf::from("vidi-data"))
                .to_string_lossy()
                .into_owned(),
        }
    }
}

/// A job on a worker thread: its messages, and a stop flag.
pub struct Job<M> {
    rx: Receiver<M>,
    cancel: Arc<AtomicBool>,
    done: bool,
}

impl<M: Send + 'static> Job<M> {
    /// Starts `work` on a thread named `name`; it sends messages with `send` and
    /// should stop soon after `cancel` is set. The UI repaints when a message comes.
    pub fn spawn(
        name: &str,
        ctx: &egui::Context,
        work: impl FnOnce(&(dyn Fn(M) + Send + Sync), &AtomicBool) + Send + 'static,
    ) -> Job<M> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<M>(256);
        let cancel = Arc::new(AtomicBool::new(false));
        let (c, ctx) = (cancel.clone(), ctx.clone());
        let spawned = std::thread::Builder::new().name(name.into()).spawn(move || {
            let send = |m: M| {
                let _ = tx.send(m);
                ctx.request_repaint();
            };
            work(&send, &c);
            crate::backend::release_memory();
            ctx.request_repaint();
        });
        Job { rx, cancel, done: spawned.is_err() }
    }

    /// Messages that arrived since the last call.
    pub fn poll(&mut self) -> Vec<M> {
        let mut out = Vec::new();
        loop {
            match self.rx.try_recv() {
                Ok(m) => out.push(m),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.done = true;
                    break;
                }
            }
        }
        out
    }

    /// Whether the thread has finished (all its messages taken).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Asks the job to stop.
    pub fn stop(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }
}

/// Sums hf-hub's per-file download progress over one operation: (bytes done, bytes known).
struct HubCounter {
    /// Done and total of finished files, then of the file in flight.
    state: std::sync::Mutex<[u64; 4]>,
    tx: std::sync::Mutex<std::sync::mpsc::Sender<(u64, u64)>>,
}

impl hf_hub::progress::ProgressHandler for HubCounter {
    fn on_progress(&self, event: &hf_hub::progress::ProgressEvent) {
        use hf_hub::progress::{DownloadEvent, ProgressEvent};
        let Ok(mut s) = self.state.lock() else { return };
        match event {
            ProgressEvent::Download(DownloadEvent::Start { total_bytes, .. }) => {
                *s = [s[0] + s[2], s[1] + s[3], 0, *total_bytes];
            }
            ProgressEvent::Download(DownloadEvent::Progress { files }) => {
                s[2] = files.iter().map(|f| f.bytes_completed).sum();
            }
            ProgressEvent::Download(DownloadEvent::AggregateProgress { bytes_completed, .. }) => {
                s[2] = *bytes_completed
            }
            _ => return,
        }
        if let Ok(tx) = self.tx.lock() {
            let _ = tx.send((s[0] + s[2], s[1] + s[3]));
        }
    }
}

/// Runs `work` with an hf-hub progress handler that reports (done, total) bytes to `on_bytes`.
pub(crate) fn with_hub_progress<T>(
    on_bytes: &(dyn Fn(u64, u64) + Sync),
    work: impl FnOnce(hf_hub::progress::Progress) -> T,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let counter = Arc::new(HubCounter { state: Default::default(), tx: std::sync::Mutex::new(tx) });
    let finished = AtomicBool::new(false);
    let fin = &finished;
    std::thread::scope(|sc| {
        sc.spawn(move || loop {
            // Stops when the work is over, even if hf-hub still holds a handler clone.
            match rx.recv_timeout(std::time::Duration::from_millis(50)) {
                Ok((d, t)) => on_bytes(d, t),
                Err(_) if fin.load(Ordering::SeqCst) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(_) => {}
            }
        });
        let out = work(hf_hub::progress::Progress::from(counter));
        finished.store(true, Ordering::SeqCst);
        out
    })
}

/// The app's state.
pub struct VidiApp {
    /// Remembered settings.
    pub settings: Settings,
    /// Where models compute, as the status bar says it.
    pub compute: crate::backend::Compute,
    /// The Hub and its cache (hf-hub's environment defaults unless set).
    pub hub: crate::hub::HubSettings,
    tabs: tabs::TabsState,
}

impl VidiApp {
    /// The app with `settings`, computing on `compute`; `files` (from the command line) are queued.
    pub fn new(settings: Settings, compute: crate::backend::Compute, files: Vec<PathBuf>) -> VidiApp {
        let mut app = VidiApp { tabs: tabs::TabsState::new(&settings), settings, compute, hub: Default::default() };
        app.open_paths(files);
        app
    }

    /// Folders open on the Dataset tab; files are queued on the Classify tab.
    pub fn open_paths(&mut self, paths: Vec<PathBuf>) {
        let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) = paths.into_iter().partition(|p| p.is_dir());
        if let Some(d) = dirs.into_iter().next() {
            self.settings.data_dir = d.to_string_lossy().into_owned();
            self.tabs.dataset.request_open = true;
            self.settings.tab = Tab::Dataset;
        }
        if !files.is_empty() {
            self.tabs.classify.files.extend(files);
            self.settings.tab = Tab::Classify;
        }
    }

    /// Draws the whole app into `ui`.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let dropped: Vec<PathBuf> = ui.ctx().input(|i| {
            i.raw.dropped_files.iter().map(|f| f.path().to_path_buf()).filter(|p| !p.as_os_str().is_empty()).collect()
        });
        if !dropped.is_empty() {
            self.open_paths(dropped);
        }
        egui::Panel::top("vidi-tabs").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading("vidi");
                ui.separator();
                for t in Tab::ALL {
                    ui.selectable_value(&mut self.settings.tab, t, t.title());
                }
            });
        });
        egui::Panel::bottom("vidi-status").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(format!("Compute: {}", self.compute.description));
                ui.separator();
                ui.label(self.tabs.status());
            });
        });
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
                self.tabs.show(self.settings.tab, ui, &mut self.settings, &self.compute, &self.hub);
            });
        });
        self.tabs.poll(ui.ctx(), &mut self.settings);
    }

    /// Whether any job is running.
    pub fn busy(&self) -> bool {
        self.tabs.busy()
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
        wgpu::DeviceDescriptor {
            label: Some("vidi: window and models"),
            required_features: adapter.features() - wgpu::Features::MAPPABLE_PRIMARY_BUFFERS,
            required_limits: adapter.limits(),
            ..Default::default()
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
    match crate::backend::on_wgpu_device(&rs.instance, &rs.adapter, &rs.device, &rs.queue) {
        Ok(c) => c,
        Err(e) => {
            let mut c = crate::backend::cpu();
            c.description = format!("{} (the GPU could not be shared: {e})", c.description);
            c
        }
    }
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
