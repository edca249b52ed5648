//! What keeps a run from going wrong unnoticed: unreadable videos reported
//! (and too many refused), a run's length changed on resume, no duplicate
//! test row, free space checked before each epoch, one-line errors.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::sync_channel;

use vidi::train::optim;
use vidi::train::{TrainConfig, TrainEvent};

use super::copy_dir;

/// A fresh small split dataset (two motion classes of real MPEG-4 videos, in
/// a folder of its own so a test may break some) and the tiny VideoMAE for it.
struct Small {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    init: PathBuf,
}

fn small(per_class: usize) -> Small {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let synth = vidi::demo::SynthOptions { classes: 2, per_class, seed: 3, ..Default::default() };
    vidi::demo::generate(&root.join("flat"), &synth, &mut |_, _| {}).unwrap();
    let data = root.join("data");
    let opts = vidi::dataset::SplitOptions { val: 0.2, test: 0.2, seed: 1, copy: true, ..Default::default() };
    vidi::dataset::split_folder(&root.join("flat"), &data, &opts).unwrap();
    let labels: Vec<String> = vidi::demo::MOTIONS[..2].iter().map(|s| s.to_string()).collect();
    let model = vidi::demo::tiny_videomae(&labels, 3, &vidi::backend::cpu().device).unwrap();
    let init = root.join("init");
    model.export(&init).unwrap();
    Small { _tmp: tmp, root, data, init }
}

/// The videos of one split of `data`, by path.
fn split_videos(data: &Path, split: &str) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for class in std::fs::read_dir(data.join(split)).unwrap() {
        for f in std::fs::read_dir(class.unwrap().path()).unwrap() {
            v.push(f.unwrap().path());
        }
    }
    v.sort();
    v
}

/// A real clip of `data`'s `split` cut to its first half (an MPEG-4 file
/// without its index), written beside it as `name`.
fn truncated_copy(data: &Path, split: &str, name: &str) -> PathBuf {
    let src = split_videos(data, split)[0].clone();
    let bytes = std::fs::read(&src).unwrap();
    let dst = src.with_file_name(name);
    std::fs::write(&dst, &bytes[..bytes.len() / 2]).unwrap();
    dst
}

/// Random bytes named like a video in `data`'s `split`.
fn random_video(data: &Path, split: &str, name: &str) -> PathBuf {
    use rand::{RngCore, SeedableRng};
    let dst = split_videos(data, split)[0].with_file_name(name);
    let mut bytes = vec![0u8; 20_000];
    rand_chacha::ChaCha8Rng::seed_from_u64(name.len() as u64).fill_bytes(&mut bytes);
    std::fs::write(&dst, bytes).unwrap();
    dst
}

/// Runs the real `vidi` with `env` set.
fn vidi_cli(args: &[String], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_vidi"));
    c.args(args).env("VIDI_DEVICE", "cpu").env_remove(vidi::train::space::RESERVE_ENV);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run vidi")
}

/// `vidi train` of the tiny model on `s` into `out`, with `extra` flags.
fn train_args(s: &Small, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = vec!["train", "--data", s.data.to_str().unwrap(), "--model", s.init.to_str().unwrap()];
    a.extend(["--out", out.to_str().unwrap(), "--lr", "2e-3", "--sample-rate", "2", "--flip-p", "0"]);
    a.extend(["--batch-size", "4", "--logging-steps", "1", "--device", "cpu"]);
    a.extend(extra);
    a.into_iter().map(String::from).collect()
}

fn resume_args(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = vec!["train", "--resume", out.to_str().unwrap()];
    a.extend(extra);
    a.into_iter().map(String::from).collect()
}

/// The JSON events of a `vidi train --json`.
fn json_events(o: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not an event line: {l:?}: {e}")))
        .collect()
}

/// The run succeeded; returns its stderr.
fn succeeded(o: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "failed: {stderr}");
    stderr
}

/// The run failed with exactly one `error:` line; returns it.
fn one_error(o: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "exit 0: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(!errors[0].contains("error: error"), "{stderr}");
    errors[0].to_string()
}

fn metrics_of(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The steps of `metrics.jsonl`'s rows that have `field`.
pub(super) fn rows_with(run: &Path, field: &str) -> Vec<u64> {
    metrics_of(run).iter().filter(|v| v.get(field).is_some()).map(|v| v["step"].as_u64().unwrap()).collect()
}

/// Unreadable files (random bytes named .mp4, a real clip cut in half) are
/// each reported, as a `skipped` line and a `skipped` JSON event, and counted
/// in the start line; a split with more than 10% of its files unreadable
/// stops the run before it writes anything, with one line naming the count
/// and the files; `--max-unreadable` lets it go on.
#[test]
fn unreadable_videos_are_reported_and_too_many_stop_the_run() {
    let s = small(12);
    let (train, val) = (split_videos(&s.data, "train").len(), split_videos(&s.data, "val").len());
    assert!(train >= 10, "{train} train videos: one unreadable must stay under 10%");
    let noise = random_video(&s.data, "train", "noise.mp4");

    // One train file in 10+ unreadable: the run goes on and says so.
    let out = s.root.join("run-one");
    let o = vidi_cli(&train_args(&s, &out, &["--max-steps", "1", "--epochs", "1", "--json"]), &[]);
    succeeded(&o);
    let events = json_events(&o);
    let skipped: Vec<&serde_json::Value> = events.iter().filter(|e| e["event"] == "skipped").collect();
    assert_eq!(skipped.len(), 1, "{events:?}");
    assert_eq!(skipped[0]["path"], noise.to_str().unwrap());
    assert!(!skipped[0]["reason"].as_str().unwrap().is_empty());
    let started = events.iter().find(|e| e["event"] == "started").expect("a started event");
    assert_eq!(started["unreadable"], 1);
    assert_eq!(started["train_videos"].as_u64(), Some(train as u64));
    assert_eq!(started["val_videos"].as_u64(), Some(val as u64));

    // A second one (a real clip cut in half) passes 10% of the train split: refused, nothing written.
    let cut = truncated_copy(&s.data, "train", "cut.mp4");
    let out = s.root.join("run-two");
    let o = vidi_cli(&train_args(&s, &out, &["--max-steps", "1", "--epochs", "1"]), &[]);
    let line = one_error(&o);
    let rel = |p: &Path| p.strip_prefix(&s.data).unwrap().display().to_string();
    let want = format!("error: {}: 2 of {} train videos cannot be read", s.data.display(), train + 2);
    assert!(line.starts_with(&want), "{line}");
    assert!(line.contains(&rel(&noise)) && line.contains(&rel(&cut)), "{line}");
    assert!(line.contains("more than the 10% --max-unreadable allows"), "{line}");
    let advice =
        format!("(vidi dataset inspect {} lists them all) or allow more with --max-unreadable", s.data.display());
    assert!(line.ends_with(&advice), "{line}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    for p in [&noise, &cut] {
        assert!(stderr.contains(&format!("skipped {}: ", p.display())), "{stderr}");
    }
    assert!(!out.exists(), "a refused run wrote {}", out.display());

    // A higher share lets the run go on; a broken val file is reported too.
    let bad_val = random_video(&s.data, "val", "noise-val.mp4");
    let out = s.root.join("run-allowed");
    let o = vidi_cli(&train_args(&s, &out, &["--max-steps", "1", "--epochs", "1", "--max-unreadable", "0.5"]), &[]);
    let stderr = succeeded(&o);
    for p in [&noise, &cut, &bad_val] {
        assert_eq!(stderr.matches(&format!("skipped {}: ", p.display())).count(), 1, "{stderr}");
    }
    assert!(stderr.contains(&format!("{train} train / {val} val videos (3 unreadable left out)")), "{stderr}");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["max_unreadable"], 0.5);
    // Out of range is refused.
    let o = vidi_cli(&train_args(&s, &s.root.join("run-bad"), &["--max-unreadable", "1.5"]), &[]);
    assert!(one_error(&o).contains("--max-unreadable takes a share from 0 to 1"));
}

/// `vidi eval` lists the unreadable files of the split it evaluates, not
/// those of the other splits.
#[test]
fn eval_lists_only_the_unreadable_files_of_its_split() {
    let s = small(10);
    let bad_train = random_video(&s.data, "train", "noise-train.mp4");
    let bad_test = truncated_copy(&s.data, "test", "cut-test.mp4");
    let args: Vec<String> = ["eval", "--model", s.init.to_str().unwrap(), "--data", s.data.to_str().unwrap()]
        .into_iter()
        .map(String::from)
        .chain(["--split".into(), "test".into()])
        .collect();
    let stderr = succeeded(&vidi_cli(&args, &[]));
    assert!(stderr.contains(&format!("unreadable, not counted: {}: ", bad_test.display())), "{stderr}");
    assert!(!stderr.contains(&bad_train.display().to_string()), "{stderr}");
}

/// `--resume RUN --epochs N` lengthens a finished run: the steps after it
/// follow the schedule over the new total, the new length is kept in
/// config.json, and fewer epochs than done are refused. Resuming a finished
/// run evaluates on test again without adding a second row for that step.
#[test]
fn resume_with_more_epochs_extends_the_run_and_adds_no_duplicate_test_row() {
    let s = small(10);
    let out = s.root.join("run");
    let o = vidi_cli(&train_args(&s, &out, &["--epochs", "1", "--json"]), &[]);
    succeeded(&o);
    let first = json_events(&o);
    let started = first.iter().find(|e| e["event"] == "started").unwrap();
    let spe = started["steps_per_epoch"].as_u64().unwrap();
    assert_eq!(started["total_steps"].as_u64(), Some(spe));
    assert_eq!(rows_with(&out, "test_accuracy"), vec![spe]);

    // A finished run, resumed: the test row of its last step is replaced, not repeated.
    succeeded(&vidi_cli(&resume_args(&out, &[]), &[]));
    assert_eq!(rows_with(&out, "test_accuracy"), vec![spe], "the finished run's test row was repeated");

    // Two epochs now.
    let o = vidi_cli(&resume_args(&out, &["--epochs", "2", "--json"]), &[]);
    succeeded(&o);
    let events = json_events(&o);
    let started = events.iter().find(|e| e["event"] == "started").unwrap();
    let total = 2 * spe;
    assert_eq!(started["total_steps"].as_u64(), Some(total), "{started}");
    assert_eq!(started["start_step"].as_u64(), Some(spe));
    assert_eq!(started["extended_from_epochs"], 1);
    let warmup = optim::warmup_steps(total, 0.1);
    let lrs: Vec<(u64, f64)> = events
        .iter()
        .filter(|e| e["event"] == "step")
        .map(|e| (e["step"].as_u64().unwrap(), e["lr"].as_f64().unwrap()))
        .collect();
    assert_eq!(lrs.iter().map(|l| l.0).collect::<Vec<_>>(), (spe + 1..=total).collect::<Vec<_>>());
    for (step, lr) in lrs {
        // The old schedule had reached 0 at step `spe`; the new one decays to 0 at `total`.
        assert_eq!(lr, optim::linear_schedule(2e-3, step - 1, warmup, total), "step {step}");
        assert!(lr > 0.0);
    }
    let done = events.last().unwrap();
    assert_eq!((done["event"].as_str(), done["steps"].as_u64()), (Some("done"), Some(total)));
    let cfg = |k: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap()
            [k]
            .clone()
    };
    assert_eq!(cfg("epochs"), 2);
    assert!(out.join("checkpoint-epoch-2/optimizer.safetensors").exists());
    assert_eq!(rows_with(&out, "eval_accuracy"), vec![spe, total]);
    assert_eq!(rows_with(&out, "test_accuracy"), vec![spe, total]);

    // Back to one epoch: refused, nothing changed.
    let before = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let line = one_error(&vidi_cli(&resume_args(&out, &["--epochs", "1"]), &[]));
    assert!(line.contains("--epochs must be at least 2"), "{line}");
    assert_eq!(cfg("epochs"), 2);
    assert_eq!(std::fs::read_to_string(out.join("metrics.jsonl")).unwrap(), before);
    // The human start line says the length changed.
    let stderr = succeeded(&vidi_cli(&resume_args(&out, &["--epochs", "3"]), &[]));
    assert!(stderr.contains("the run's length changed (it had 2 epoch(s))"), "{stderr}");
    assert_eq!(cfg("epochs"), 3);
}

/// With no room on the run folder's disk (here: a reserve larger than any
/// disk, `VIDI_MIN_FREE_BYTES`), a new run stops before it writes anything
/// and a resumed one before it trains, each with one line.
#[test]
fn no_room_on_disk_stops_a_run_before_it_writes() {
    let s = small(10);
    let huge = [(vidi::train::space::RESERVE_ENV, "4611686018427387904")];
    let out = s.root.join("run");
    let line = one_error(&vidi_cli(&train_args(&s, &out, &["--epochs", "1"]), &huge));
    assert!(line.starts_with(&format!("error: {}: not enough free space: ", out.display())), "{line}");
    assert!(line.contains("left free (VIDI_MIN_FREE_BYTES)"), "{line}");
    assert!(line.ends_with("free some space or pick another --out (nothing was written)"), "{line}");
    assert!(!out.exists());

    // A finished run lengthened by an epoch: refused before it trains or changes its config.json.
    succeeded(&vidi_cli(&train_args(&s, &out, &["--epochs", "1"]), &[]));
    let files = || ["config.json", "metrics.jsonl"].map(|f| std::fs::read(out.join(f)).unwrap());
    let before = files();
    let line = one_error(&vidi_cli(&resume_args(&out, &["--epochs", "2"]), &huge));
    assert!(line.starts_with(&format!("error: {}: not enough free space: ", out.display())), "{line}");
    assert!(line.contains("a checkpoint of "), "{line}");
    assert!(line.ends_with(&format!("free some space, then continue with: vidi train --resume {}", out.display())));
    let line =
        one_error(&vidi_cli(&resume_args(&out, &["--epochs", "2"]), &[(vidi::train::space::RESERVE_ENV, "lots")]));
    assert_eq!(line, "error: VIDI_MIN_FREE_BYTES=lots: expected a whole number of bytes");
    assert_eq!(files(), before);
    assert!(!out.join("checkpoint-epoch-2").exists() && !out.join("checkpoint-epoch-2.tmp").exists());

    // A run bounded by --max-steps keeps its length.
    let capped = s.root.join("capped");
    succeeded(&vidi_cli(&train_args(&s, &capped, &["--epochs", "1", "--max-steps", "1"]), &[]));
    let line = one_error(&vidi_cli(&resume_args(&capped, &["--epochs", "2"]), &[]));
    assert!(line.ends_with("this run ends at --max-steps 1, which --epochs does not change"), "{line}");
}

/// A small tmpfs mounted for a test, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// `None` when not root (mounting needs it); as root, a mount that fails fails the test.
    fn mount(dir: &Path, bytes: u64) -> Option<Tmpfs> {
        // SAFETY: geteuid only reads the process's user id.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let o = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount");
        assert!(o.status.success(), "mount: {}", String::from_utf8_lossy(&o.stderr));
        Some(Tmpfs { dir: dir.to_path_buf() })
    }

    /// Fills the disk with one file until `left` bytes stay free.
    fn fill_leaving(&self, left: u64) -> PathBuf {
        let free = vidi::train::space::free_bytes(&self.dir).unwrap();
        assert!(free > left, "{free} free, cannot leave {left}");
        let filler = self.dir.join("filler");
        std::fs::write(&filler, vec![7u8; (free - left) as usize]).unwrap();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.dir).status();
    }
}

/// On a real, small disk (a tmpfs; run as root, as CI does): a run with no
/// room for its first checkpoint is refused before it writes; a run whose disk
/// fills after its first epoch stops at the next epoch with one line, keeps
/// that checkpoint and leaves no half-written folder; with the space freed,
/// `--resume` finishes it.
#[test]
fn a_full_disk_stops_the_run_in_time_and_leaves_no_half_written_checkpoint() {
    let s = small(10);
    let Some(disk) = Tmpfs::mount(&s.root.join("disk"), 96 << 20) else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let no_reserve = [(vidi::train::space::RESERVE_ENV, "0")];
    let out = disk.dir.join("run");

    // Less than a checkpoint free.
    let filler = disk.fill_leaving(100 << 10);
    let line = one_error(&vidi_cli(&train_args(&s, &out, &["--epochs", "3"]), &no_reserve));
    assert!(line.starts_with(&format!("error: {}: not enough free space: ", out.display())), "{line}");
    assert!(line.contains("3 checkpoints of "), "{line}");
    assert!(!out.exists());
    std::fs::remove_file(&filler).unwrap();

    // Room to start; the disk fills up once the first checkpoint is written.
    // The events go through a channel with no room, so the run waits at each
    // event until the test takes it: it cannot write epoch 2's checkpoint
    // before the disk is full. Its reserve is the default one.
    let cfg = TrainConfig {
        data: s.data.clone(),
        model: s.init.to_string_lossy().into_owned(),
        epochs: 3,
        batch_size: 4,
        lr: 2e-3,
        sample_rate: 2,
        flip_p: 0.0,
        logging_steps: 1,
        device: vidi::backend::DeviceChoice::Cpu,
        ..Default::default()
    };
    let reserve = vidi::train::space::reserve().unwrap();
    let first = out.join("checkpoint-epoch-1");
    let (tx, rx) = sync_channel(0);
    let cancel = AtomicBool::new(false);
    let (cfg_ref, out_ref, cancel_ref) = (&cfg, &out, &cancel);
    let (result, filled) = std::thread::scope(|sc| {
        let h = sc.spawn(move || vidi::train::train(Some(cfg_ref), out_ref, &tx, cancel_ref));
        let mut filled = false;
        for e in rx {
            if let (TrainEvent::Checkpoint { path }, false) = (&e, filled) {
                assert_eq!(path, &first);
                disk.fill_leaving(reserve + vidi::train::space::dir_size(&first) / 2);
                filled = true;
            }
        }
        (h.join().unwrap(), filled)
    });
    assert!(filled, "no checkpoint was written");
    let e = result.expect_err("the run went on on a full disk");
    assert!(matches!(e, vidi::train::TrainError::NoSpace { .. }), "{e}");
    let line = e.to_string();
    assert!(line.starts_with(&format!("{}: not enough free space: ", out.display())), "{line}");
    assert!(line.ends_with(&format!(" with: vidi train --resume {}", out.display())), "{line}");
    let mut names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["best", "checkpoint-epoch-1", "config.json", "metrics.jsonl"], "left in the run folder");
    assert!(first.join("optimizer.safetensors").exists() && first.join("trainer_state.json").exists());

    // Space freed: the run goes on from its checkpoint to its end.
    std::fs::remove_file(disk.dir.join("filler")).unwrap();
    let o = vidi_cli(&resume_args(&out, &["--json"]), &no_reserve);
    succeeded(&o);
    let events = json_events(&o);
    let started = events.iter().find(|e| e["event"] == "started").unwrap();
    assert_eq!(started["start_step"], started["steps_per_epoch"]);
    assert_eq!(events.last().unwrap()["steps"], started["total_steps"]);
    assert!(out.join("checkpoint-epoch-3").exists());
}

/// A model whose config asks for no frames is refused when it is loaded, as a
/// fault of its config.json, by `vidi train` (before anything is written) and `vidi eval`.
#[test]
fn a_model_config_with_no_frames_is_refused_at_load() {
    let s = small(10);
    let model = s.root.join("no-frames");
    copy_dir(&s.init, &model);
    let cfg_path = model.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["num_frames"] = serde_json::json!(0);
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let out = s.root.join("run");
    let mut train = train_args(&s, &out, &["--epochs", "1"]);
    let at = train.iter().position(|a| a == "--model").unwrap() + 1;
    train[at] = model.to_string_lossy().into_owned();
    let eval: Vec<String> = ["eval", "--model", model.to_str().unwrap(), "--data", s.data.to_str().unwrap()]
        .into_iter()
        .map(String::from)
        .collect();
    for args in [train, eval] {
        let line = one_error(&vidi_cli(&args, &[]));
        assert!(
            line.contains(&cfg_path.display().to_string()) && line.contains("num_frames must be at least 1"),
            "{line}"
        );
        assert!(!line.contains("frames between"), "{line}");
    }
    assert!(!out.exists());
}

/// A run folder that cannot be made (its parent is a file) fails with one
/// line that names the folder and gives the system's reason once.
#[test]
fn a_run_folder_that_cannot_be_written_is_one_line_without_repetition() {
    let s = small(10);
    let file = s.root.join("a-file");
    std::fs::write(&file, b"not a folder").unwrap();
    let out = file.join("run");
    let line = one_error(&vidi_cli(&train_args(&s, &out, &["--epochs", "1"]), &[]));
    assert_eq!(line, format!("error: {}: Not a directory (os error 20)", out.display()));
}
