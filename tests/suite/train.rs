//! Fine-tuning: optimizer steps against PyTorch (tests/fixtures/train, made by
//! make_reference.py there), gradient accumulation, a tiny model that learns
//! synthetic motion from real encoded videos, exact resume, evaluation outputs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::OnceLock;

use vidi::model::weights::read_safetensors;
use vidi::model::{LoadOptions, VideoModel};
use vidi::train::optim::{self, AdamW, AdamWConfig, GradAccumulator};
use vidi::train::{TrainConfig, TrainEvent};

use crate::{fixtures, read_tensor};

mod guards;

fn ad_cpu() -> burn::tensor::Device {
    vidi::backend::cpu().device.autodiff()
}

/// Three Trainer steps (cross-entropy, clip_grad_norm_ 1.0, AdamW with weight
/// decay 0.1 outside biases and LayerNorms, linear warm-up schedule) give the
/// weights PyTorch gives, within 1e-5, for all four architectures.
#[test]
fn optimizer_steps_match_pytorch() {
    optimizer_steps_match_pytorch_on(&ad_cpu());
}

/// A PyTorch optimizer-step fixture (`train/NAME_steps.json`: its losses,
/// gradient norms and learning rates), and what it fixes for vidi's run: the
/// batch's labels, AdamW's settings, the learning rate, the total steps and
/// the warm-up steps (transformers' `warmup_ratio` 0.1).
pub struct StepFixture {
    pub log: serde_json::Value,
    pub labels: Vec<usize>,
    pub cfg: AdamWConfig,
    pub lr: f64,
    pub total: u64,
    pub warmup: u64,
}

pub fn step_fixture(name: &str) -> StepFixture {
    let path = fixtures().join(format!("train/{name}_steps.json"));
    let log: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let labels = log["labels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let cfg = AdamWConfig {
        weight_decay: log["weight_decay"].as_f64().unwrap(),
        max_grad_norm: log["max_grad_norm"].as_f64().unwrap(),
        ..Default::default()
    };
    let (lr, total) = (log["lr"].as_f64().unwrap(), log["total"].as_u64().unwrap());
    let warmup = optim::warmup_steps(total, 0.1);
    StepFixture { log, labels, cfg, lr, total, warmup }
}

/// [`optimizer_steps_match_pytorch`] on an autodiff `device`.
pub fn optimizer_steps_match_pytorch_on(device: &burn::tensor::Device) {
    for name in ["videomae_meanpool", "timesformer", "vivit", "vjepa2"] {
        let dir = fixtures().join("models").join(name);
        let StepFixture { log, labels, cfg, lr, total, warmup } = step_fixture(name);
        let (mut model, _) = VideoModel::load(&dir, &LoadOptions::default(), device).unwrap();
        let (shape, pixels) = read_tensor(&dir.join("io.safetensors"), "pixel_values");
        let shape: [usize; 5] = shape.try_into().unwrap();
        assert_eq!(warmup, log["warmup"].as_u64().unwrap());
        let mut opt = AdamW::new(cfg);
        for step in 0..3u64 {
            let mut acc = GradAccumulator::default();
            let loss =
                vidi::train::accumulate(&model, pixels.clone(), shape, &labels, 1.0 / labels.len() as f64, 0, &mut acc)
                    .unwrap()
                    .value();
            let want_loss = log["losses"][step as usize].as_f64().unwrap();
            assert!((loss - want_loss).abs() < 1e-5, "{name} step {step}: loss {loss} vs {want_loss}");
            let step_lr = optim::linear_schedule(lr, step, warmup, total);
            assert!((step_lr - log["lrs"][step as usize].as_f64().unwrap()).abs() < 1e-12);
            let info;
            (model, info) = vidi::train::apply_step(model, &mut opt, acc, step_lr);
            let want_norm = log["grad_norms"][step as usize].as_f64().unwrap();
            let norm = info.grad_norm.value();
            assert!((norm - want_norm).abs() < 1e-4 * want_norm, "{name}: norm {norm} vs {want_norm}");
        }
        let want = read_safetensors(&fixtures().join(format!("train/{name}_steps.safetensors"))).unwrap();
        let got = vidi::train::inference_copy(&model).export_tensors();
        let start = read_safetensors(&dir.join("model.safetensors")).unwrap();
        let mut moved = 0;
        let mut compared = 0;
        // V-JEPA 2's rotary embeddings turn only the first 3 * 2 * ((head_dim / 3) / 2) dims of each head.
        let head_dim = model.config.hidden_size / model.config.num_attention_heads;
        let rotated = 3 * 2 * ((head_dim / 3) / 2);
        for (k, w) in &want {
            // V-JEPA 2's predictor (pre-training only) gets no gradient in PyTorch, and vidi does not build it.
            if k.starts_with("vjepa2.predictor.") {
                assert!(crate::max_abs_diff(&start[k].data, &w.data) == 0.0, "{name}: {k} moved in PyTorch");
                continue;
            }
            compared += 1;
            let g = got.get(k).unwrap_or_else(|| panic!("{name}: {k} not exported"));
            // A key bias adds q.b_k to every score of a query, which softmax ignores: its
            // gradient is exactly zero in theory and float noise in practice, which Adam
            // scales up to lr-sized, arbitrary steps in both frameworks. It cannot change
            // an output, so it is left out of the comparison.
            let d = if name == "vjepa2" && k.ends_with("attention.key.bias") {
                // Rotated by position, a key bias does change the scores, except in the
                // dims the rotary embeddings leave alone: compare the rotated ones.
                let keep = |v: &[f32]| -> Vec<f32> {
                    v.iter().enumerate().filter(|(i, _)| i % head_dim < rotated).map(|(_, x)| *x).collect()
                };
                crate::max_abs_diff(&keep(&g.data), &keep(&w.data))
            } else if k.ends_with("key.bias") || k.ends_with("k_proj.bias") {
                continue;
            } else if k.ends_with("qkv.bias") {
                let n = w.data.len() / 3;
                let q = crate::max_abs_diff(&g.data[..n], &w.data[..n]);
                q.max(crate::max_abs_diff(&g.data[2 * n..], &w.data[2 * n..]))
            } else if let Some(tiny) = log["tiny_grads"][k.as_str()].as_array() {
                // Elements whose PyTorch gradient was below 1e-5 at some step (listed by the
                // fixture script): Adam divides by sqrt(v), which turns float rounding there into
                // steps up to lr-sized, so they are held to 1e-4 and the rest to 1e-5.
                let tiny: BTreeSet<usize> = tiny.iter().map(|i| i.as_u64().unwrap() as usize).collect();
                let (mut rest, mut near_zero) = (0f32, 0f32);
                for (i, (a, b)) in g.data.iter().zip(&w.data).enumerate() {
                    let e = (a - b).abs();
                    if tiny.contains(&i) {
                        near_zero = near_zero.max(e);
                    } else {
                        rest = rest.max(e);
                    }
                }
                assert!(near_zero <= 1e-4, "{name}: {k} differs at near-zero gradients by {near_zero}");
                rest
            } else {
                crate::max_abs_diff(&g.data, &w.data)
            };
            assert!(d <= 1e-5, "{name}: {k} differs from PyTorch's by {d}");
            if crate::max_abs_diff(&start[k].data, &w.data) > 1e-4 {
                moved += 1;
            }
        }
        // The check means something: the steps moved (nearly) every tensor well beyond the tolerance.
        assert!(moved * 10 >= compared * 9, "{name}: only {moved} of {compared} tensors moved");
    }
}

/// Two micro-batches of one clip summed into a step equal one batch of two.
#[test]
fn gradient_accumulation_equals_the_full_batch() {
    let dir = fixtures().join("models/videomae_meanpool");
    let (shape, pixels) = read_tensor(&dir.join("io.safetensors"), "pixel_values");
    let one: usize = shape[1..].iter().product();
    let labels = [1usize, 4];
    let run = |micro: bool| {
        let (model, _) = VideoModel::load(&dir, &LoadOptions::default(), &ad_cpu()).unwrap();
        let mut opt = AdamW::new(AdamWConfig::default());
        let mut acc = GradAccumulator::default();
        if micro {
            for i in 0..2 {
                let s = [1, shape[1], shape[2], shape[3], shape[4]];
                let px = pixels[i * one..(i + 1) * one].to_vec();
                vidi::train::accumulate(&model, px, s, &labels[i..i + 1], 0.5, 0, &mut acc).unwrap();
            }
        } else {
            let s: [usize; 5] = shape.clone().try_into().unwrap();
            vidi::train::accumulate(&model, pixels.clone(), s, &labels, 0.5, 0, &mut acc).unwrap();
        }
        let (model, _) = vidi::train::apply_step(model, &mut opt, acc, 1e-3);
        vidi::train::inference_copy(&model).export_tensors()
    };
    let (a, b) = (run(false), run(true));
    for (k, t) in &a {
        let d = crate::max_abs_diff(&t.data, &b[k].data);
        assert!(d <= 1e-6, "{k}: accumulated step differs by {d}");
    }
}

/// A small synthetic motion dataset (real MPEG-4 files), split, with the demo's
/// tiny VideoMAE exported beside it; made once for the tests of this module.
pub struct Motion {
    _tmp: tempfile::TempDir,
    split: PathBuf,
    init: PathBuf,
    /// A folder for the tests' runs.
    pub root: PathBuf,
}

pub fn motion() -> &'static Motion {
    static M: OnceLock<Motion> = OnceLock::new();
    M.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let synth = vidi::demo::SynthOptions { classes: 4, per_class: 60, seed: 5, ..Default::default() };
        vidi::demo::generate(&root.join("flat"), &synth, &mut |_, _| {}).unwrap();
        let split = root.join("split");
        let opts = vidi::dataset::SplitOptions { val: 0.2, test: 0.25, seed: 1, ..Default::default() };
        vidi::dataset::split_folder(&root.join("flat"), &split, &opts).unwrap();
        let labels: Vec<String> = vidi::demo::MOTIONS[..4].iter().map(|s| s.to_string()).collect();
        let model = vidi::demo::tiny_videomae(&labels, 3, &vidi::backend::cpu().device).unwrap();
        let init = root.join("init");
        model.export(&init).unwrap();
        Motion { _tmp: tmp, split, init, root }
    })
}

/// Training on the motion dataset for `epochs`, logging every 2 steps, on the CPU.
pub fn motion_config(m: &Motion, epochs: usize) -> TrainConfig {
    TrainConfig {
        data: m.split.clone(),
        model: m.init.to_string_lossy().into_owned(),
        epochs,
        lr: 2e-3,
        sample_rate: 2,
        flip_p: 0.0,
        seed: 9,
        logging_steps: 2,
        device: vidi::backend::DeviceChoice::Cpu,
        ..Default::default()
    }
}

/// Runs training on a thread, collecting its events; `stop_after` sets the cancel flag at that step.
pub fn run_training(
    cfg: Option<&TrainConfig>,
    out: &Path,
    stop_after: Option<u64>,
) -> (vidi::train::TrainSummary, Vec<TrainEvent>) {
    let (tx, rx) = sync_channel(16);
    let cancel = AtomicBool::new(false);
    std::thread::scope(|s| {
        let h = s.spawn(|| vidi::train::train(cfg, out, &tx, &cancel));
        let mut events = Vec::new();
        loop {
            match rx.recv_timeout(std::time::Duration::from_millis(50)) {
                Ok(e) => {
                    if let (TrainEvent::Step { step, .. }, Some(n)) = (&e, stop_after) {
                        if *step >= n {
                            cancel.store(true, Ordering::SeqCst);
                        }
                    }
                    events.push(e);
                }
                Err(_) if h.is_finished() => break,
                Err(_) => {}
            }
        }
        while let Ok(e) = rx.try_recv() {
            events.push(e);
        }
        (h.join().unwrap().unwrap_or_else(|e| panic!("training failed: {e}")), events)
    })
}

/// The tiny VideoMAE, from random weights, learns which way things move: on
/// held-out videos its accuracy is far above chance (25%). A single frame
/// cannot tell the classes apart, so this needs the temporal signal.
#[test]
fn tiny_model_learns_motion_from_videos() {
    let m = motion();
    let out = m.root.join("run-learn");
    let (summary, events) = run_training(Some(&motion_config(m, 20)), &out, None);
    let test = summary.test.as_ref().expect("a test evaluation");
    assert!(test.videos >= 20, "{} test videos", test.videos);
    eprintln!("tiny model: test accuracy {:.3} on {} videos", test.accuracy, test.videos);
    assert!(test.accuracy >= 0.75, "test accuracy {} (chance 0.25)", test.accuracy);
    // The run folder has what it promises.
    for p in [
        "config.json",
        "metrics.jsonl",
        "best/config.json",
        "best/model.safetensors",
        "checkpoint-epoch-20/optimizer.safetensors",
    ] {
        assert!(out.join(p).exists(), "{p} missing");
    }
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.iter().filter(|l| l.get("eval_accuracy").is_some()).count(), 20, "one eval per epoch");
    assert!(lines.iter().any(|l| l.get("loss").is_some()));
    assert!(events.iter().any(|e| matches!(e, TrainEvent::Step { clips_per_s, .. } if *clips_per_s > 0.0)));
    // best/ is the model with the best val accuracy, and it classifies like the report says.
    let evals: Vec<f64> = lines.iter().filter_map(|l| l["eval_accuracy"].as_f64()).collect();
    let best = evals.iter().cloned().fold(0.0, f64::max);
    assert_eq!(summary.best_accuracy, Some(best));
    // The confusion matrix agrees with the per-video outcomes, and the files are written.
    let total: usize = test.confusion.iter().flatten().sum();
    assert_eq!(total, test.videos);
    let right = test.outcomes.iter().filter(|o| o.label == o.predicted).count();
    assert!((right as f64 / test.videos as f64 - test.accuracy).abs() < 1e-12);
    let eval_dir = out.join("eval");
    vidi::eval::write_report(test, &eval_dir).unwrap();
    let png = image::open(eval_dir.join("confusion.png")).unwrap().to_rgb8();
    assert!(png.width() > 100 && png.height() > 100);
    let dark = png.pixels().filter(|p| p.0.iter().all(|c| *c < 80)).count();
    assert!(dark > 200, "the heat-map has no text ({dark} dark pixels)");
    let csv = std::fs::read_to_string(eval_dir.join("confusion.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5);
    assert!(csv.starts_with("true\\predicted,Growing,MovingDown,MovingLeft,MovingRight"));
}

pub fn weights_of(dir: &Path) -> std::collections::BTreeMap<String, vidi::model::weights::HostTensor> {
    read_safetensors(&dir.join("model.safetensors")).unwrap()
}

/// A run stopped mid-epoch and resumed (and one "killed" with only its
/// epoch checkpoint left) ends with the weights of the uninterrupted run,
/// with dropout in the model's config: the masks of each step are drawn again.
#[test]
fn resumed_run_matches_uninterrupted_run() {
    let m = motion();
    let mut cfg = motion_config(m, 2);
    let init = m.root.join("init-dropout");
    copy_dir(&m.init, &init);
    let path = init.join("config.json");
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["hidden_dropout_prob"] = serde_json::json!(0.2);
    config["attention_probs_dropout_prob"] = serde_json::json!(0.1);
    std::fs::write(&path, config.to_string()).unwrap();
    cfg.model = init.to_string_lossy().into_owned();
    cfg.batch_size = 4;
    cfg.grad_accum = 2;
    let full = m.root.join("run-full");
    let (s_full, _) = run_training(Some(&cfg), &full, None);
    assert!(!s_full.stopped);
    let steps_per_epoch = s_full.steps / 2;
    assert!(steps_per_epoch >= 3);

    // Stopped a little into the second epoch, then resumed.
    let part = m.root.join("run-stopped");
    let stop_at = steps_per_epoch + 1;
    let (s_stop, _) = run_training(Some(&cfg), &part, Some(stop_at));
    assert!(s_stop.stopped, "the run did not stop");
    assert!(s_stop.steps >= stop_at && s_stop.steps < s_full.steps);
    assert!(part.join(format!("checkpoint-step-{}", s_stop.steps)).exists());
    // A new run cannot overwrite it.
    let again = vidi::train::train(Some(&cfg), &part, &sync_channel(64).0, &AtomicBool::new(false));
    assert!(again.is_err());
    // "Kill" a copy: only the epoch-1 checkpoint and a half-written folder survive.
    let killed = m.root.join("run-killed");
    std::fs::create_dir_all(&killed).unwrap();
    for f in ["config.json", "metrics.jsonl"] {
        std::fs::copy(part.join(f), killed.join(f)).unwrap();
    }
    copy_dir(&part.join("checkpoint-epoch-1"), &killed.join("checkpoint-epoch-1"));
    copy_dir(&part.join(format!("checkpoint-step-{}", s_stop.steps)), &killed.join("checkpoint-step-99.tmp"));

    let (s_res, _) = run_training(None, &part, None);
    let (s_kill, _) = run_training(None, &killed, None);
    for (name, s, dir) in [("resumed", &s_res, &part), ("killed", &s_kill, &killed)] {
        assert!(!s.stopped);
        assert_eq!(s.steps, s_full.steps, "{name}");
        let (a, b) = (weights_of(&full.join("checkpoint-epoch-2")), weights_of(&dir.join("checkpoint-epoch-2")));
        for (k, t) in &a {
            let d = crate::max_abs_diff(&t.data, &b[k].data);
            assert!(d <= 1e-6, "{name}: {k} differs from the uninterrupted run by {d}");
        }
        let (oa, ob) = (
            read_safetensors(&full.join("checkpoint-epoch-2/optimizer.safetensors")).unwrap(),
            read_safetensors(&dir.join("checkpoint-epoch-2/optimizer.safetensors")).unwrap(),
        );
        assert_eq!(oa.len(), ob.len());
        for (k, t) in &oa {
            assert!(crate::max_abs_diff(&t.data, &ob[k].data) <= 1e-6, "{name}: optimizer {k}");
        }
        // metrics.jsonl has each step logged once.
        let steps: Vec<u64> = std::fs::read_to_string(dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.get("loss").is_some())
            .map(|v| v["step"].as_u64().unwrap())
            .collect();
        let mut dedup = steps.clone();
        dedup.dedup();
        assert_eq!(steps, dedup, "{name}: repeated log lines");
    }
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
    }
}

/// Bad setups fail with a clear message before anything is written.
#[test]
fn bad_training_setups_are_refused() {
    let m = motion();
    let tmp = tempfile::tempdir().unwrap();
    let (tx, _rx) = sync_channel(64);
    let no = AtomicBool::new(false);
    // A flat folder (not split).
    let mut cfg = motion_config(m, 1);
    cfg.data = m.root.join("flat");
    let e = vidi::train::train(Some(&cfg), &tmp.path().join("a"), &tx, &no).unwrap_err().to_string();
    assert!(e.contains("dataset split"), "{e}");
    // Fewer videos than one batch.
    let mut cfg = motion_config(m, 1);
    cfg.batch_size = 1000;
    let e = vidi::train::train(Some(&cfg), &tmp.path().join("b"), &tx, &no).unwrap_err().to_string();
    assert!(e.contains("fewer than one batch"), "{e}");
    // A missing model.
    let mut cfg = motion_config(m, 1);
    cfg.model = tmp.path().join("nope").to_string_lossy().into_owned();
    assert!(vidi::train::train(Some(&cfg), &tmp.path().join("c"), &tx, &no).is_err());
    // Resume of a folder that holds no run.
    let e = vidi::train::train(None, tmp.path(), &tx, &no).unwrap_err().to_string();
    assert!(e.contains("not a run folder"), "{e}");
}

/// The one line a second `vidi train` on a run folder in use prints.
fn in_use_line(run: &Path, pid: u32) -> String {
    format!("error: {} is in use by another vidi train (process {pid}); wait for it to end or stop it", run.display())
}

/// Two processes never write one run folder: while a real `vidi train` runs,
/// a second one given the same `--out` (started as soon as the first holds the
/// folder, while it still reads its data) and one given `--resume` (once it
/// trains) each end with one line naming the first's process, and write
/// nothing; the first ends normally with exactly one run's metrics.
#[test]
fn a_run_folder_in_use_is_refused_to_a_second_process() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let m = motion();
    let out = m.root.join("run-locked");
    let (data, init) = (m.split.to_str().unwrap(), m.init.to_str().unwrap());
    let train_args = |seed: &str| -> Vec<String> {
        let mut a = vec!["train", "--data", data, "--model", init, "--out", out.to_str().unwrap()];
        a.extend(["--epochs", "3", "--lr", "2e-3", "--sample-rate", "2", "--flip-p", "0", "--logging-steps", "2"]);
        a.extend(["--device", "cpu", "--seed", seed]);
        a.into_iter().map(String::from).collect()
    };
    let mut first = Command::new(env!("CARGO_BIN_EXE_vidi"))
        .args(train_args("9"))
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vidi train");
    let pid = first.id();
    let mut stderr = first.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let second = |args: Vec<String>| {
        let o = Command::new(env!("CARGO_BIN_EXE_vidi")).args(&args).output().expect("run vidi");
        assert!(!o.status.success(), "{args:?} ran beside the first run");
        assert_eq!(String::from_utf8_lossy(&o.stderr), in_use_line(&out, pid) + "\n", "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}");
    };

    // As soon as the first holds the folder: the same --out, with other settings.
    let t = std::time::Instant::now();
    while !std::fs::read_to_string(out.join(".lock")).is_ok_and(|s| s.starts_with(&format!("{pid}\n"))) {
        assert!(t.elapsed().as_secs() < 60, "the first run never took the run folder");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    second(train_args("1234"));

    // Once it trains: --resume.
    let mut lines = std::io::BufReader::new(first.stdout.take().unwrap()).lines();
    let started: serde_json::Value = loop {
        let line = lines.next().expect("the first run ended before it started").unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not an event line: {line:?}: {e}"));
        if v["event"] == "started" {
            break v;
        }
    };
    second(vec!["train".into(), "--resume".into(), out.to_str().unwrap().into()]);
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<String>>());

    let status = first.wait().unwrap();
    let (stderr, rest) = (stderr.join().unwrap(), rest.join().unwrap());
    assert!(status.success(), "the first run failed: {stderr}");
    let done: serde_json::Value = serde_json::from_str(rest.last().expect("no events after started")).unwrap();
    assert_eq!(done["event"], "done", "{done}");
    let total = started["total_steps"].as_u64().unwrap();
    assert!(total >= 6, "{started}");
    assert_eq!(done["steps"].as_u64(), Some(total));
    assert_eq!(done["stopped"], false);

    // The run folder is the first run's alone: its settings, one log line per
    // second step in order, one evaluation per epoch, and no lock left.
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["seed"], 9);
    let metrics: Vec<serde_json::Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("metrics.jsonl line {l:?}: {e}")))
        .collect();
    let steps = |field: &str| -> Vec<u64> {
        metrics.iter().filter(|v| v.get(field).is_some()).map(|v| v["step"].as_u64().unwrap()).collect()
    };
    let want: Vec<u64> = (1..=total / 2).map(|i| i * 2).collect();
    assert_eq!(steps("loss"), want, "logged steps");
    let evals = steps("eval_accuracy");
    assert_eq!(evals.len(), 3, "one evaluation per epoch: {evals:?}");
    assert!(evals.windows(2).all(|w| w[0] < w[1]), "{evals:?}");
    assert_eq!(steps("test_accuracy").len(), 1);
    for e in ["checkpoint-epoch-1", "checkpoint-epoch-2", "checkpoint-epoch-3", "best"] {
        assert!(out.join(e).join("model.safetensors").exists(), "{e}");
    }
    assert!(!out.join(".lock").exists());
    // Free again: a later process takes the folder (the run is complete, so
    // resuming it only evaluates the best model on test once more, in place
    // of that step's row).
    let o = Command::new(env!("CARGO_BIN_EXE_vidi"))
        .args(["train", "--json", "--resume", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(guards::rows_with(&out, "test_accuracy"), [total]);
}
