//! The desktop app, driven through AccessKit by role and label (egui_kittest):
//! every tab, a dataset opened, an augmentation previewed, a short training
//! started and stopped, a clip classified. And the real binary in a real
//! window under Xvfb, screenshotted.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use vidi::app::{Settings, Tab, VidiApp};

/// A tiny split motion dataset and the demo's tiny model, made once.
pub struct Fixture {
    _tmp: tempfile::TempDir,
    pub split: PathBuf,
    pub model: PathBuf,
    root: PathBuf,
}

pub fn fixture() -> &'static Fixture {
    static F: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let synth = vidi::demo::SynthOptions { classes: 3, per_class: 10, seed: 2, ..Default::default() };
        vidi::demo::generate(&root.join("flat"), &synth, &mut |_, _| {}).unwrap();
        let split = root.join("split");
        vidi::dataset::split_folder(&root.join("flat"), &split, &Default::default()).unwrap();
        let labels: Vec<String> = vidi::demo::MOTIONS[..3].iter().map(|s| s.to_string()).collect();
        let m = vidi::demo::tiny_videomae(&labels, 1, &vidi::backend::cpu().device).unwrap();
        let model = root.join("model");
        m.export(&model).unwrap();
        Fixture { _tmp: tmp, split, model, root }
    })
}

pub fn harness(app: VidiApp) -> Harness<'static, VidiApp> {
    Harness::builder().with_size(egui::vec2(1280.0, 1000.0)).build_ui_state(|ui, app: &mut VidiApp| app.show(ui), app)
}

/// Steps the UI until no job runs (jobs are real threads), or panics after `secs`.
pub fn settle(h: &mut Harness<'static, VidiApp>, secs: u64) {
    let t = Instant::now();
    h.step();
    while h.state().busy() {
        assert!(t.elapsed() < Duration::from_secs(secs), "a job did not finish in {secs} s");
        std::thread::sleep(Duration::from_millis(30));
        h.step();
    }
    h.step();
    h.step();
}

/// A loopback address nothing listens on: "no network", refused at once.
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

/// The app as `vidi` opens it, but hermetic: the Hub is a closed port and the
/// Hub cache an empty folder, unless a test points them elsewhere.
pub fn new_app(settings: Settings, files: Vec<PathBuf>) -> VidiApp {
    static CACHE: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(|| tempfile::tempdir().unwrap());
    let mut app = VidiApp::new(settings, vidi::backend::cpu(), files);
    app.hub = vidi::hub::HubSettings {
        endpoint: Some(closed_port()),
        cache_dir: Some(cache.path().to_path_buf()),
        ..Default::default()
    };
    app
}

/// The player's position line, "frame i/n  t s".
pub fn frame_label(h: &Harness<'static, VidiApp>) -> String {
    use egui_kittest::kittest::NodeT;
    let labels: Vec<String> = h
        .query_all_by_label_contains("frame ")
        .filter_map(|n| n.accesskit_node().value())
        .filter(|l| l.starts_with("frame "))
        .collect();
    assert_eq!(labels.len(), 1, "{labels:?}");
    labels[0].clone()
}

/// Steps until a label containing `text` shows, or panics after `secs`.
pub fn wait_for(h: &mut Harness<'static, VidiApp>, text: &str, secs: u64) {
    let t = Instant::now();
    loop {
        h.step();
        if h.query_by_label_contains(text).is_some() {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(secs), "'{text}' did not appear in {secs} s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_tab_opens_and_the_dataset_loads() {
    let f = fixture();
    let settings = Settings { data_dir: f.split.to_string_lossy().into_owned(), ..Default::default() };
    let mut h = harness(new_app(settings, Vec::new()));
    h.step();
    for tab in Tab::ALL {
        h.get_by_role_and_label(egui::accesskit::Role::Button, tab.title()).click();
        h.step();
        h.step();
        assert_eq!(h.state().settings.tab, tab);
        // The tab's heading is shown under its button.
        assert!(h.query_all_by_label(tab.title()).count() >= 2, "{} shows no heading", tab.title());
    }
    h.get_by_role_and_label(egui::accesskit::Role::Button, "Dataset").click();
    h.step();
    h.get_by_label("Open").click();
    settle(&mut h, 60);
    h.get_by_label_contains("3 classes");
    for c in &vidi::demo::MOTIONS[..3] {
        h.get_by_label(c);
    }
    // The status bar says where models compute.
    h.get_by_label_contains("Compute: CPU");
    // Selecting a video gives its frame strip.
    let first = std::fs::read_dir(f.split.join("train/Growing")).unwrap().next().unwrap().unwrap().path();
    let name = first.file_name().unwrap().to_string_lossy().into_owned();
    h.get_by_label_contains(&name).click_accesskit();
    settle(&mut h, 30);
    h.get_by_label("Frames sampled evenly over the whole video:");
    assert_eq!(h.state().settings.video, first.to_string_lossy());
    // ... and plays it: all 24 frames (the generator wrote 24), pause, step, scrub.
    let frames = vidi::video::probe(&first).unwrap().frames;
    wait_for(&mut h, &format!("/{frames} "), 30);
    h.get_by_label("Pause").click();
    h.step();
    h.step();
    h.get_by_label("Play");
    h.get_by_label("Previous frame").click();
    h.step();
    h.step();
    let at = frame_label(&h);
    h.get_by_label("Next frame").click();
    h.step();
    h.step();
    let next = frame_label(&h);
    let n = |s: &str| s.split(['/', ' ']).nth(1).and_then(|x| x.parse::<usize>().ok()).unwrap();
    assert_eq!(n(&next), n(&at) + 1, "{at} -> {next}");
    h.get_by_label("Previous frame").click();
    h.step();
    h.step();
    assert_eq!(frame_label(&h), at);
}

#[test]
fn a_folder_from_the_command_line_opens_on_the_dataset_tab() {
    let f = fixture();
    let settings = Settings { tab: Tab::Classify, ..Default::default() };
    // As `vidi FOLDER` does.
    let mut h = harness(new_app(settings, vec![f.split.clone()]));
    settle(&mut h, 60);
    assert_eq!(h.state().settings.tab, Tab::Dataset);
    assert_eq!(h.state().settings.data_dir, f.split.to_string_lossy());
    h.get_by_label_contains("3 classes");
}

#[test]
fn first_run_without_network_says_what_to_do() {
    let settings =
        Settings { model: "MCG-NJU/videomae-base-finetuned-kinetics".into(), tab: Tab::Classify, ..Default::default() };
    let mut h = harness(new_app(settings, Vec::new()));
    settle(&mut h, 60);
    h.get_by_label_contains("is not downloaded, and the Hub cannot be reached");
    h.get_by_label_contains("open a model folder (Browse…)");
    h.get_by_label_contains("or run the offline demo (Train tab");
    h.get_by_role_and_label(egui::accesskit::Role::Button, "Train").click();
    settle(&mut h, 60);
    h.get_by_label_contains("press \"Run the offline demo\" below");
    h.get_by_label("Run the offline demo");
    // A folder is taken as it is: the advice goes away.
    h.state_mut().settings.model = fixture().model.to_string_lossy().into_owned();
    settle(&mut h, 60);
    h.get_by_label("Ready: a model folder.");
    assert!(h.query_by_label_contains("cannot be reached").is_none());
}

/// "Ready" only for a folder that holds a model: an empty folder, a junk
/// `config.json` and a config without weights each say what is wrong.
#[test]
fn a_folder_is_ready_only_when_it_holds_a_model() {
    use egui_kittest::kittest::NodeT;
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    let junk = tmp.path().join("junk");
    let no_weights = tmp.path().join("no-weights");
    for d in [&empty, &junk, &no_weights] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(junk.join("config.json"), r#"{"model_type": "bert", "hidden_size": 8}"#).unwrap();
    std::fs::copy(fixture().model.join("config.json"), no_weights.join("config.json")).unwrap();
    let settings = Settings { tab: Tab::Classify, ..Default::default() };
    let mut h = harness(new_app(settings, Vec::new()));
    for (dir, why) in [
        (&empty, "config.json: No such file"),
        (&junk, "bert"),
        (&no_weights, "no model.safetensors, model.safetensors.index.json or pytorch_model.bin"),
    ] {
        h.state_mut().settings.model = dir.to_string_lossy().into_owned();
        let expected = format!("Not a model folder: {}", dir.display());
        wait_for(&mut h, &expected, 30);
        let shown = h.get_by_label_contains(&expected).accesskit_node().value().unwrap_or_default();
        assert!(shown.contains(why), "{}: {shown}", dir.display());
        assert!(h.query_by_label("Ready: a model folder.").is_none(), "{}", dir.display());
    }
    h.state_mut().settings.model = fixture().model.to_string_lossy().into_owned();
    wait_for(&mut h, "Ready: a model folder.", 30);
    assert!(h.query_by_label_contains("Not a model folder").is_none());
}

#[test]
fn first_run_with_the_hub_downloads_a_model_with_its_size_then_classifies() {
    use egui_kittest::kittest::NodeT;
    let f = fixture();
    let mut files = std::collections::HashMap::new();
    let mut size = 0;
    for name in ["config.json", "preprocessor_config.json", "model.safetensors"] {
        let data = std::fs::read(f.model.join(name)).unwrap();
        size += data.len();
        files.insert(format!("/alice/tiny-motion/resolve/main/{name}"), data);
    }
    let hub = crate::hub::serve(files);
    let cache = tempfile::tempdir().unwrap();
    let video = std::fs::read_dir(f.split.join("test/MovingLeft")).unwrap().next().unwrap().unwrap().path();
    let settings = Settings { model: "alice/tiny-motion".into(), ..Default::default() };
    let mut app = new_app(settings, vec![video.clone()]);
    app.hub = vidi::hub::HubSettings {
        endpoint: Some(hub.url.clone()),
        cache_dir: Some(cache.path().into()),
        ..Default::default()
    };
    let mut h = harness(app);
    settle(&mut h, 60);
    h.get_by_label_contains("is on the Hub but not downloaded yet");
    // The size shown is the files' size.
    h.get_by_label(&format!("Download ({:.1} MB)", size as f64 / 1e6)).click();
    settle(&mut h, 60);
    h.get_by_label("Ready: downloaded (in the Hugging Face cache; works offline).");
    let got: Vec<String> = hub.log.lock().unwrap().iter().filter(|l| l.contains("/resolve/")).cloned().collect();
    assert!(got.iter().any(|l| l.ends_with("model.safetensors")), "{got:?}");
    h.get_by_label("Run classification").click();
    settle(&mut h, 60);
    for c in &vidi::demo::MOTIONS[..3] {
        h.get_by_label_contains(&format!("{c}  0."));
    }
    // The clip plays beside its labels.
    let t = Instant::now();
    loop {
        h.step();
        let shown = h
            .query_all_by_label_contains("frame ")
            .filter_map(|n| n.accesskit_node().value())
            .any(|l| l.starts_with("frame "));
        if shown {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "the clip does not play");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The app on the Dataset tab, with the Hub at `url`, an empty Hub cache and
/// an empty downloads folder, after a click on "Download the UCF101 subset".
fn ucf101_download_clicked(url: &str) -> (Harness<'static, VidiApp>, tempfile::TempDir, tempfile::TempDir) {
    let (cache, downloads) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let settings = Settings {
        downloads: downloads.path().to_string_lossy().into_owned(),
        tab: Tab::Dataset,
        ..Default::default()
    };
    let mut app = new_app(settings, Vec::new());
    app.hub = vidi::hub::HubSettings {
        endpoint: Some(url.to_string()),
        cache_dir: Some(cache.path().into()),
        ..Default::default()
    };
    let mut h = harness(app);
    h.step();
    h.get_by_label_contains("Download the UCF101 subset").click();
    (h, cache, downloads)
}

#[test]
fn the_ucf101_button_downloads_extracts_and_opens_the_dataset() {
    let f = fixture();
    // The archive as the Hub serves it: UCF101_subset/{train,val,test}/<Class>/*.
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    b.append_dir_all("UCF101_subset", &f.split).unwrap();
    let archive = b.into_inner().unwrap().finish().unwrap();
    let url = format!("/datasets/{}/resolve/main/{}", vidi::hub::REFERENCE_DATASET, vidi::hub::REFERENCE_DATASET_FILE);
    let hub = crate::hub::serve([(url, archive)].into_iter().collect());
    let (mut h, _cache, downloads) = ucf101_download_clicked(&hub.url);
    settle(&mut h, 60);
    let root = downloads.path().join("UCF101_subset");
    assert_eq!(h.state().settings.data_dir, root.to_string_lossy());
    h.get_by_label_contains("3 classes");
    assert!(root.join("train/Growing").is_dir());
}

#[test]
fn cancel_stops_the_dataset_download_at_once_and_removes_its_part() {
    // 1,000 bytes of the archive, then silence.
    let hub = crate::net::server(|_, req, s| {
        if req.method == "HEAD" {
            return crate::net::head_ok(s, "00cc11dd", 50_000);
        }
        crate::net::send(s, "200 OK", &[("Content-Length", "50000".into())], &[0u8; 1000]);
        crate::net::stall(s);
    });
    let (mut h, cache, _downloads) = ucf101_download_clicked(&hub.url);
    let part = cache.path().join("datasets--sayakpaul--ucf101-subset/blobs/00cc11dd.incomplete");
    let t = Instant::now();
    while std::fs::metadata(&part).map_or(0, |m| m.len()) < 1000 {
        assert!(t.elapsed() < Duration::from_secs(10), "the first bytes never came");
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    h.get_by_label("Cancel").click();
    let t = Instant::now();
    wait_for(&mut h, "cancelled", 5);
    assert!(t.elapsed() < Duration::from_secs(2), "took {:?} to stop", t.elapsed());
    assert!(!h.state().busy());
    assert!(!part.exists(), "the partial file stayed");
}

#[test]
fn preview_shows_sampled_and_augmented_frames() {
    let f = fixture();
    let video = std::fs::read_dir(f.split.join("train/MovingDown")).unwrap().next().unwrap().unwrap().path();
    let settings = Settings {
        video: video.to_string_lossy().into_owned(),
        model: f.model.to_string_lossy().into_owned(),
        tab: Tab::Preview,
        ..Default::default()
    };
    let mut h = harness(new_app(settings, Vec::new()));
    h.step();
    // The model's own frames, size and mean/std (the tiny model: 8 frames of 32 px).
    let spin = |h: &Harness<'static, VidiApp>, name: &str| {
        use egui_kittest::kittest::NodeT;
        h.get_by_role_and_label(egui::accesskit::Role::SpinButton, name).accesskit_node().numeric_value()
    };
    assert_eq!(spin(&h, "frames"), Some(16.0), "the guide's default first");
    h.get_by_label_contains("Use the settings of").click();
    settle(&mut h, 30);
    assert_eq!(spin(&h, "frames"), Some(8.0));
    assert_eq!(spin(&h, "crop size"), Some(32.0));
    h.get_by_label_contains("normalise: mean [0.485, 0.456, 0.406]");
    h.get_by_label("Preview").click();
    settle(&mut h, 30);
    h.get_by_label("Sampled frames:");
    h.get_by_label("Augmented frames (un-normalised):");
    h.get_by_label_contains("clip 0.");
    // A bad path is an error message, not a crash.
    h.state_mut().settings.video = f.root.join("missing.mp4").to_string_lossy().into_owned();
    h.get_by_label("New sample").click();
    settle(&mut h, 30);
    h.get_by_label_contains("missing.mp4");
}

/// A new user's first screen is Start here; its demo button runs the offline
/// demo on the Train tab, in a new folder under the downloads folder, to its
/// result: the test accuracy, shown (the demo's motions are learnable: over 90%).
#[test]
fn start_here_runs_the_offline_demo_to_its_result() {
    let downloads = tempfile::tempdir().unwrap();
    let settings = Settings { downloads: downloads.path().to_string_lossy().into_owned(), ..Default::default() };
    let mut h = harness(new_app(settings, Vec::new()));
    h.step();
    assert_eq!(h.state().settings.tab, Tab::Start);
    h.get_by_label("Use my videos"); // the Start page, not only its tab
    h.get_by_label("Try the offline demo").click();
    h.step(); // the click
    h.step(); // the commands it sent
    assert_eq!(h.state().settings.tab, Tab::Train);
    wait_for(&mut h, "Test accuracy:", 600);
    use egui_kittest::kittest::NodeT;
    let result = h.get_by_label_contains("Test accuracy:").accesskit_node().value().unwrap_or_default();
    let pct: f64 = result
        .split("Test accuracy: ")
        .nth(1)
        .and_then(|r| r.split('%').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no accuracy in {result:?}"));
    assert!(pct > 90.0, "{result}");
    let best = downloads.path().join("vidi-demo/run/best/config.json");
    assert!(best.is_file(), "{result}: no {}", best.display());
    // Evaluate takes the model just trained.
    h.get_by_role_and_label(egui::accesskit::Role::Button, "Evaluate").click();
    h.step();
    let best_dir = downloads.path().join("vidi-demo/run/best").display().to_string();
    assert!(h.query_all_by_value(&best_dir).next().is_some(), "Evaluate's model is not {best_dir}");
}

#[test]
fn training_starts_shows_progress_and_stops() {
    let f = fixture();
    let run = f.root.join("gui-run");
    let settings = Settings {
        data_dir: f.split.to_string_lossy().into_owned(),
        model: f.model.to_string_lossy().into_owned(),
        run_dir: run.to_string_lossy().into_owned(),
        epochs: 200,
        batch_size: 2,
        tab: Tab::Train,
        ..Default::default()
    };
    let mut h = harness(new_app(settings, Vec::new()));
    h.step();
    h.get_by_label("Start").click();
    // Wait for progress, then stop.
    let t = Instant::now();
    loop {
        h.step();
        if h.query_by_label_contains("clips/s").is_some() {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "no progress shown");
        std::thread::sleep(Duration::from_millis(30));
    }
    // The UI keeps drawing while the model trains on its worker thread: time frames for a while.
    let mut frames = Vec::new();
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(1500) {
        let f = Instant::now();
        h.step();
        frames.push(f.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(16));
    }
    frames.sort_by(f64::total_cmp);
    let (median, worst) = (frames[frames.len() / 2], frames[frames.len() - 1]);
    eprintln!("UI frames while training: {} frames, median {median:.2} ms, worst {worst:.2} ms", frames.len());
    // Generous: a frame that waited on the training step would take the step's whole time.
    assert!(worst < 1000.0, "a frame took {worst} ms: the UI blocked");
    h.get_by_label("Stop").click();
    settle(&mut h, 60);
    h.get_by_label_contains("stopped at step");
    let stopped = std::fs::read_dir(&run)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with("checkpoint-step-"));
    assert!(stopped, "Stop saved no checkpoint");
}

#[test]
fn classify_a_queued_clip_shows_its_labels() {
    let f = fixture();
    let video = std::fs::read_dir(f.split.join("test/MovingLeft")).unwrap().next().unwrap().unwrap().path();
    let settings = Settings { model: f.model.to_string_lossy().into_owned(), ..Default::default() };
    // As `vidi FILE` does: the file is queued and the Classify tab selected.
    let mut h = harness(new_app(settings, vec![video.clone()]));
    h.step();
    assert_eq!(h.state().settings.tab, Tab::Classify);
    h.get_by_label(&video.display().to_string());
    h.get_by_label("Run classification").click();
    settle(&mut h, 60);
    h.get_by_label("Frames of these results: as Evaluate");
    // By default the scores are the ones evaluation gives the video.
    let cpu = vidi::backend::cpu();
    let (m, _) = vidi::model::VideoModel::load(&f.model, &Default::default(), &cpu.device).unwrap();
    let label = m.labels.iter().position(|l| l == "MovingLeft").unwrap();
    let item = vidi::dataset::loader::Item { path: video.clone(), label, duration_s: None };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let report = vidi::eval::evaluate(&m, &[item], &Default::default(), &mut |_, _| {}, &stop).unwrap();
    assert_eq!(report.outcomes[0].top3.len(), 3);
    for p in &report.outcomes[0].top3 {
        h.get_by_label(&format!("{}  {:.3}", p.label, p.score));
    }
    // The pipeline's frames, when chosen, and said so.
    h.get_by_label("first frames").click();
    h.get_by_label("Run classification").click();
    settle(&mut h, 60);
    h.get_by_label("Frames of these results: first frames");
    let opts = vidi::infer::ClassifyOptions { sampling: vidi::infer::Sampling::Pipeline, ..Default::default() };
    let want = vidi::infer::classify(&m, &[video], &opts, &mut |_, _| {});
    let vidi::infer::VideoResult::Ok { predictions, .. } = &want[0] else { panic!("{:?}", want[0]) };
    for p in predictions {
        h.get_by_label(&format!("{}  {:.3}", p.label, p.score));
    }
}

/// The real binary opens a real window under Xvfb (software rendering) and draws it,
/// as the desktop entry starts it (`vidi %F`), with models on the window's own
/// wgpu device (`VIDI_DEVICE=gpu`: lavapipe here).
#[test]
fn the_binary_opens_a_window_under_xvfb() {
    let tmp = tempfile::tempdir().unwrap();
    let display = format!(":{}", 90 + std::process::id() % 100);
    let mut xvfb = std::process::Command::new("Xvfb")
        .args([display.as_str(), "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
        .env("XDG_RUNTIME_DIR", tmp.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("Xvfb is needed (scripts/setup.sh --test installs it)");
    std::thread::sleep(Duration::from_secs(2));
    let mut app = std::process::Command::new(env!("CARGO_BIN_EXE_vidi"))
        .env("DISPLAY", &display)
        .env_remove("WAYLAND_DISPLAY")
        .env("XDG_RUNTIME_DIR", tmp.path())
        .env("HOME", tmp.path())
        .env("VIDI_DEVICE", "gpu")
        .arg(crate::clip("v_ApplyEyeMakeup_g01_c01.avi"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run vidi");
    let shot = tmp.path().join("shot.png");
    let mut ok = false;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(500));
        if let Ok(Some(status)) = app.try_wait() {
            let _ = xvfb.kill();
            let mut err = String::new();
            use std::io::Read;
            let _ = app.stderr.take().map(|mut e| e.read_to_string(&mut err));
            panic!("vidi exited ({status}) without a window: {err}");
        }
        let _ = std::process::Command::new("import")
            .env("XDG_RUNTIME_DIR", tmp.path())
            .args(["-display", display.as_str(), "-window", "root"])
            .arg(&shot)
            .output();
        if let Ok(img) = image::open(&shot) {
            let img = img.to_rgb8();
            let first = *img.get_pixel(0, 0);
            let differing = img.pixels().filter(|p| **p != first).count();
            if differing > 10_000 {
                ok = true;
                break;
            }
        }
    }
    // Settings and the window's geometry are saved while it runs (every 5 s), where
    // eframe keeps them ($HOME/.local/share/vidi/app.ron), and read at the next start.
    let saved = tmp.path().join(".local/share/vidi/app.ron");
    let mut persisted = String::new();
    for _ in 0..30 {
        persisted = std::fs::read_to_string(&saved).unwrap_or_default();
        if persisted.contains("window") && persisted.contains("run_dir") {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = app.kill();
    let _ = xvfb.kill();
    let _ = app.wait();
    let _ = xvfb.wait();
    assert!(
        persisted.contains("window") && persisted.contains("inner_size") && persisted.contains("run_dir"),
        "{} holds no settings and window geometry: {persisted}",
        saved.display()
    );
    let mut err = String::new();
    use std::io::Read;
    let _ = app.stderr.take().map(|mut e| e.read_to_string(&mut err));
    assert!(ok, "no window content appeared on the screen within 20 s: {err}");
    assert!(err.contains("models compute on GPU") && err.contains("the window's own device"), "{err}");
    if let Ok(dir) = std::env::var("VIDI_SCREENSHOT_DIR") {
        let _ = std::fs::copy(&shot, Path::new(&dir).join("window.png"));
    }
}

/// Every tab, at work, renders through wgpu (lavapipe without a GPU) to a
/// non-blank image: a dataset opened and a video playing, an augmentation
/// previewed with the model's settings, a short training run, its evaluation,
/// and clips classified. With VIDI_SCREENSHOT_DIR set, the images are saved
/// there (the README's tour comes from here).
#[test]
fn every_tab_at_work_renders() {
    let f = fixture();
    let run = tempfile::tempdir().unwrap();
    let settings = Settings {
        data_dir: f.split.to_string_lossy().into_owned(),
        model: f.model.to_string_lossy().into_owned(),
        run_dir: run.path().join("run").to_string_lossy().into_owned(),
        epochs: 20,
        batch_size: 2,
        lr: 2e-3,
        tab: Tab::Dataset,
        ..Default::default()
    };
    let mut h = Harness::builder()
        .with_size(egui::vec2(1100.0, 860.0))
        .wgpu()
        .build_ui_state(|ui, app: &mut VidiApp| app.show(ui), new_app(settings, Vec::new()));
    let shoot = |h: &mut Harness<'static, VidiApp>, tab: Tab| {
        let img = h.render().unwrap_or_else(|e| panic!("{}: {e}", tab.title()));
        let first = *img.get_pixel(0, 0);
        let differing = img.pixels().filter(|p| **p != first).count();
        assert!(differing > 5_000, "{} rendered blank ({differing} pixels differ)", tab.title());
        if let Ok(dir) = std::env::var("VIDI_SCREENSHOT_DIR") {
            let name = tab.title().to_lowercase().replace(' ', "-");
            img.save(Path::new(&dir).join(format!("tab-{name}.png"))).unwrap();
        }
    };
    h.step();
    h.get_by_label("Open").click();
    settle(&mut h, 60);
    let video = std::fs::read_dir(f.split.join("train/MovingDown")).unwrap().next().unwrap().unwrap().path();
    let name = video.file_name().unwrap().to_string_lossy().into_owned();
    h.get_by_label_contains(&name).click_accesskit();
    settle(&mut h, 30);
    wait_for(&mut h, "/24 ", 30);
    shoot(&mut h, Tab::Dataset);

    h.state_mut().settings.tab = Tab::Preview;
    h.step();
    h.get_by_label_contains("Use the settings of").click();
    settle(&mut h, 30);
    h.get_by_label("Preview").click();
    settle(&mut h, 30);
    shoot(&mut h, Tab::Preview);

    h.state_mut().settings.tab = Tab::Train;
    h.step();
    h.get_by_label("Start").click();
    settle(&mut h, 180);
    h.get_by_label_contains("done: best val accuracy");
    shoot(&mut h, Tab::Train);

    h.state_mut().settings.tab = Tab::Evaluate;
    h.step();
    h.get_by_label("Run evaluation").click();
    settle(&mut h, 60);
    h.get_by_label_contains("accuracy ");
    shoot(&mut h, Tab::Evaluate);

    let tests: Vec<PathBuf> = ["Growing", "MovingDown", "MovingLeft"]
        .iter()
        .map(|c| std::fs::read_dir(f.split.join("test").join(c)).unwrap().next().unwrap().unwrap().path())
        .collect();
    h.state_mut().open_paths(tests);
    h.step();
    h.get_by_label("Run classification").click();
    settle(&mut h, 60);
    wait_for(&mut h, "/24 ", 30);
    shoot(&mut h, Tab::Classify);
}

/// One GPU context: the renderer's wgpu device (created as the app creates it)
/// is the device Burn computes on. Without a GPU this runs on lavapipe, with
/// `Gpu` chosen explicitly (the app would pick the CPU backend by itself there).
/// A clip is classified on that device through the UI, the UI is rendered on
/// it, and the scores match the CPU backend's.
#[test]
fn models_compute_on_the_windows_own_wgpu_device() {
    use vidi::backend::DeviceChoice;
    let f = fixture();
    let rs = egui_kittest::wgpu::create_render_state(vidi::app::wgpu_setup(DeviceChoice::Gpu), Default::default());
    let compute = vidi::app::compute_for(Some(&rs), DeviceChoice::Gpu);
    assert!(compute.is_gpu && compute.description.contains("the window's own device"), "{}", compute.description);
    // Left alone on a software adapter, the app computes on the CPU backend.
    if rs.adapter.get_info().device_type == eframe::wgpu::DeviceType::Cpu {
        assert!(!vidi::app::compute_for(Some(&rs), DeviceChoice::Auto).is_gpu);
    }

    let video = std::fs::read_dir(f.split.join("test/MovingDown")).unwrap().next().unwrap().unwrap().path();
    let settings = Settings { model: f.model.to_string_lossy().into_owned(), ..Default::default() };
    let mut app = new_app(settings, vec![video.clone()]);
    app.compute = compute;
    let mut h = Harness::builder()
        .with_size(egui::vec2(1100.0, 720.0))
        .renderer(egui_kittest::wgpu::WgpuTestRenderer::from_render_state(rs))
        .build_ui_state(|ui, app: &mut VidiApp| app.show(ui), app);
    settle(&mut h, 60);
    h.get_by_label_contains("the window's own device");
    h.get_by_label("Run classification").click();
    settle(&mut h, 120);
    let img = h.render().expect("render on the shared device");
    assert!(img.pixels().filter(|p| **p != *img.get_pixel(0, 0)).count() > 5_000, "blank render");

    let cpu = vidi::backend::cpu();
    let (m, _) = vidi::model::VideoModel::load(&f.model, &Default::default(), &cpu.device).unwrap();
    // The app's default frames: the view Evaluate scores.
    let opts = vidi::infer::ClassifyOptions { sampling: vidi::infer::Sampling::Eval, ..Default::default() };
    let want = vidi::infer::classify(&m, &[video], &opts, &mut |_, _| {});
    let vidi::infer::VideoResult::Ok { predictions, .. } = &want[0] else { panic!("{:?}", want[0]) };
    for p in predictions {
        h.get_by_label(&format!("{}  {:.3}", p.label, p.score));
    }
}

/// A GPU lost in the middle of a training run (its wgpu device destroyed,
/// as a driver reset leaves it) ends the job with a message that says so and
/// names the checkpoint kept; the models move to the CPU, the window keeps
/// drawing, and Resume goes on from that checkpoint.
#[test]
fn a_lost_gpu_ends_training_with_a_clear_message_and_keeps_the_checkpoint() {
    use egui_kittest::kittest::NodeT;
    use vidi::backend::DeviceChoice;
    let f = fixture();
    let window = egui_kittest::wgpu::create_render_state(vidi::app::wgpu_setup(DeviceChoice::Gpu), Default::default());
    // The models' device: a second device on the adapter, so that losing it leaves the window's.
    let gpu = egui_kittest::wgpu::create_render_state(vidi::app::wgpu_setup(DeviceChoice::Gpu), Default::default());
    let compute = vidi::backend::on_wgpu_device(&gpu.instance, &gpu.adapter, &gpu.device, &gpu.queue).unwrap();
    let run = f.root.join("gui-run-lost");
    let settings = Settings {
        data_dir: f.split.to_string_lossy().into_owned(),
        model: f.model.to_string_lossy().into_owned(),
        run_dir: run.to_string_lossy().into_owned(),
        epochs: 200,
        batch_size: 4,
        tab: Tab::Train,
        ..Default::default()
    };
    let mut app = new_app(settings, Vec::new());
    app.compute = compute;
    let mut h = Harness::builder()
        .with_size(egui::vec2(1100.0, 720.0))
        .renderer(egui_kittest::wgpu::WgpuTestRenderer::from_render_state(window))
        .build_ui_state(|ui, app: &mut VidiApp| app.show(ui), app);
    h.step();
    h.get_by_label("Start").click();
    wait_for(&mut h, "saved", 300);
    gpu.device.destroy();
    let t = Instant::now();
    while h.state().busy() {
        assert!(t.elapsed() < Duration::from_secs(120), "the training did not end after its GPU was lost");
        std::thread::sleep(Duration::from_millis(30));
        h.step();
    }
    h.step();
    let msg =
        h.get_by_label_contains("Training stopped: the GPU was lost").accesskit_node().value().unwrap_or_default();
    assert!(msg.contains("the last checkpoint, ") && msg.contains("checkpoint-epoch-1 (step "), "{msg}");
    assert!(run.join("checkpoint-epoch-1/model.safetensors").is_file(), "the checkpoint named is whole");
    h.render().expect("the window still draws");
    let status = h.get_by_label_contains("Compute: CPU").accesskit_node().value().unwrap_or_default();
    assert!(status.contains("the GPU was lost during training"), "{status}");
    // Resume goes on from the checkpoint, on the CPU.
    h.get_by_label("Resume").click();
    wait_for(&mut h, "training on CPU", 60);
    h.get_by_label("Stop").click();
    settle(&mut h, 120);
}

/// Screens whose content does not depend on the machine (no temporary paths,
/// no timings) are compared with committed image snapshots (tests/snapshots/,
/// rendered through wgpu: lavapipe without a GPU). `UPDATE_SNAPSHOTS=1` rewrites them.
#[test]
fn stable_screens_match_their_snapshots() {
    let settings = Settings {
        model: "MCG-NJU/videomae-base-finetuned-kinetics".into(),
        downloads: "~/vidi-data".into(),
        ..Default::default()
    };
    let mut app = new_app(settings, Vec::new());
    app.compute.description = "CPU (flex)".into();
    let mut h = Harness::builder()
        .with_size(egui::vec2(1000.0, 560.0))
        .wgpu()
        .build_ui_state(|ui, app: &mut VidiApp| app.show(ui), app);
    let options = egui_kittest::SnapshotOptions::new().max_failed_pixels(8);
    for tab in Tab::ALL {
        h.state_mut().settings.tab = tab;
        settle(&mut h, 60);
        h.snapshot_options(format!("tab-{}", tab.title().to_lowercase().replace(' ', "-")), &options);
    }
}

/// Every character the app's code writes (outside comments) has a glyph in
/// the fonts the window draws with, proportional and monospace: none is drawn
/// as a box.
#[test]
fn every_character_the_app_writes_has_a_glyph() {
    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src/app"), &mut files);
    let ctx = egui::Context::default();
    ctx.run_ui(Default::default(), |_| {}).textures_delta.clear(); // loads the fonts
    let mut missing = std::collections::BTreeSet::new();
    let mut seen = 0;
    for f in &files {
        for (i, line) in std::fs::read_to_string(f).unwrap().lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for c in code.chars().filter(|c| !c.is_ascii()) {
                seen += 1;
                for font in [egui::FontId::proportional(14.0), egui::FontId::monospace(14.0)] {
                    if !ctx.fonts_mut(|fonts| fonts.has_glyph(&font, c)) {
                        missing.insert(format!(
                            "'{c}' (U+{:04X}, {:?}) in {}:{}",
                            c as u32,
                            font.family,
                            f.display(),
                            i + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(seen > 0, "no non-ASCII text found: the scan is broken");
    assert!(missing.is_empty(), "characters without a glyph:\n{}", missing.into_iter().collect::<Vec<_>>().join("\n"));
}
