//! The offline demo: a synthetic *motion* dataset (classes that differ only
//! in how a textured shape moves, so that no single frame gives the class
//! away), encoded as real video files, split, and used to fine-tune a tiny
//! VideoMAE from random initialisation. Needs no network and no data.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::SyncSender;

use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::backend::DeviceChoice;
use crate::dataset::split::{split_folder, SplitOptions};
use crate::dataset::transforms::{ImageProcessor, ProcessorSize};
use crate::model::{ModelConfig, VideoModel};
use crate::train::{train, TrainConfig, TrainError, TrainEvent, TrainSummary};
use crate::video::{encode_rgb, RgbFrame};

/// The motions, in label order.
pub const MOTIONS: [&str; 6] = ["Growing", "MovingDown", "MovingLeft", "MovingRight", "MovingUp", "Shrinking"];

/// How the synthetic dataset is made.
#[derive(Clone, Debug, Serialize)]
pub struct SynthOptions {
    /// How many of [`MOTIONS`] to use (2..=6).
    pub classes: usize,
    /// Videos per class.
    pub per_class: usize,
    /// Frame width = height in pixels (even).
    pub size: u32,
    /// Frames per video.
    pub frames: usize,
    /// Frames per second.
    pub fps: u32,
    /// Seed.
    pub seed: u64,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions { classes: 6, per_class: 100, size: 64, frames: 24, fps: 30, seed: 0 }
    }
}

fn color<R: Rng>(rng: &mut R, lo: f32, hi: f32) -> [f32; 3] {
    [rng.random_range(lo..hi), rng.random_range(lo..hi), rng.random_range(lo..hi)]
}

/// Renders one video of `motion`: a static textured background and a
/// textured square or disc that moves, grows or shrinks.
pub fn render_motion<R: Rng>(motion: &str, opts: &SynthOptions, rng: &mut R) -> Vec<RgbFrame> {
    let n = opts.size as usize;
    let sf = n as f32;
    // Background: a gradient between two colours plus blocky static noise.
    // Dark, varied backgrounds and a bright object: the motion, not the colours, tells the class.
    let (c0, c1) = (color(rng, 0.0, 100.0), color(rng, 0.0, 100.0));
    let angle: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let block = rng.random_range(3..8usize);
    let nb = n.div_ceil(block);
    let noise: Vec<f32> = (0..nb * nb).map(|_| rng.random_range(-5.0..5.0)).collect();
    let mut bg = vec![0f32; n * n * 3];
    for y in 0..n {
        for x in 0..n {
            let t = ((x as f32 / sf - 0.5) * angle.cos() + (y as f32 / sf - 0.5) * angle.sin() + 0.5).clamp(0.0, 1.0);
            let nz = noise[(y / block) * nb + x / block];
            for k in 0..3 {
                bg[(y * n + x) * 3 + k] = c0[k] * (1.0 - t) + c1[k] * t + nz;
            }
        }
    }
    // The object: a two-tone checker texture.
    let fg = color(rng, 150.0, 255.0);
    let fg2 = [fg[0] * 0.8, fg[1] * 0.8, fg[2] * 0.8];
    let disc = rng.random_bool(0.5);
    let check = rng.random_range(2..5usize) as f32;
    let frames = opts.frames;
    let span = (frames - 1) as f32;
    // Per frame: centre (x, y) and half size.
    let track: Vec<(f32, f32, f32)> = match motion {
        "Growing" | "Shrinking" => {
            let (small, big) = (rng.random_range(0.06..0.1) * sf, rng.random_range(0.2..0.26) * sf);
            let (cx, cy) = (rng.random_range(0.35..0.65) * sf, rng.random_range(0.35..0.65) * sf);
            (0..frames)
                .map(|i| {
                    let t = i as f32 / span;
                    let t = if motion == "Growing" { t } else { 1.0 - t };
                    (cx, cy, small + (big - small) * t)
                })
                .collect()
        }
        _ => {
            let half = rng.random_range(0.11..0.15) * sf;
            // Per frame; the object crosses a third to a half of the frame in a 16-frame clip.
            let speed = rng.random_range(0.02..0.027) * sf;
            let travel = speed * span;
            let (dx, dy) = match motion {
                "MovingLeft" => (-1.0, 0.0),
                "MovingRight" => (1.0, 0.0),
                "MovingUp" => (0.0, -1.0),
                _ => (0.0, 1.0),
            };
            let lo = half + 1.0;
            let hi = sf - half - 1.0;
            let mut start = |d: f32| {
                if d > 0.0 {
                    rng.random_range(lo..(hi - travel).max(lo + 0.1))
                } else if d < 0.0 {
                    rng.random_range((lo + travel).min(hi - 0.1)..hi)
                } else {
                    rng.random_range(lo..hi)
                }
            };
            let (x0, y0) = (start(dx), start(dy));
            (0..frames).map(|i| (x0 + dx * speed * i as f32, y0 + dy * speed * i as f32, half)).collect()
        }
    };
    track
        .into_iter()
        .enumerate()
        .map(|(i, (cx, cy, half))| {
            let mut px = bg.clone();
            for y in 0..n {
                for x in 0..n {
                    let (fx, fy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                    let inside =
                        if disc { fx * fx + fy * fy <= half * half } else { fx.abs() <= half && fy.abs() <= half };
                    if inside {
                        // Texture attached to the object (it moves and scales with it).
                        let u = ((fx / half + 1.0) * check).floor() as i32 + ((fy / half + 1.0) * check).floor() as i32;
                        let c = if u % 2 == 0 { fg } else { fg2 };
                        px[(y * n + x) * 3..(y * n + x) * 3 + 3].copy_from_slice(&c);
                    }
                }
            }
            RgbFrame {
                width: opts.size,
                height: opts.size,
                data: px.into_iter().map(|v| v.round().clamp(0.0, 255.0) as u8).collect(),
                time_secs: Some(i as f64 / opts.fps as f64),
            }
        })
        .collect()
}

/// Writes the dataset as `<dir>/<Motion>/v_<Motion>_gNN_c01.mp4` (each video its own group).
/// `progress(done, total)` after each file.
pub fn generate(
    dir: &Path,
    opts: &SynthOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<PathBuf>, crate::video::VideoError> {
    let classes = &MOTIONS[..opts.classes.clamp(2, MOTIONS.len())];
    let total = classes.len() * opts.per_class;
    let mut out = Vec::new();
    for (c, motion) in classes.iter().enumerate() {
        let cdir = dir.join(motion);
        std::fs::create_dir_all(&cdir).map_err(|_| crate::video::VideoError::NotFound { path: cdir.clone() })?;
        for i in 0..opts.per_class {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed ^ ((c as u64) << 32 | i as u64));
            let frames = render_motion(motion, opts, &mut rng);
            let path = cdir.join(format!("v_{motion}_g{:03}_c01.mp4", i + 1));
            encode_rgb(&path, &frames, opts.fps)?;
            out.push(path);
            progress(out.len(), total);
        }
    }
    Ok(out)
}

/// A tiny VideoMAE for `labels` (32x32, 8 frames, 2 layers of width 64), as config JSON.
pub fn tiny_videomae_config(labels: &[String]) -> ModelConfig {
    let id2label: serde_json::Map<String, serde_json::Value> =
        labels.iter().enumerate().map(|(i, l)| (i.to_string(), serde_json::json!(l))).collect();
    let label2id: serde_json::Map<String, serde_json::Value> =
        labels.iter().enumerate().map(|(i, l)| (l.clone(), serde_json::json!(i))).collect();
    let raw = serde_json::json!({
        "architectures": ["VideoMAEForVideoClassification"],
        "model_type": "videomae",
        "image_size": 32, "patch_size": 8, "num_channels": 3, "num_frames": 8, "tubelet_size": 2,
        "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
        "initializer_range": 0.02, "layer_norm_eps": 1e-12, "qkv_bias": true, "use_mean_pooling": true,
        "id2label": id2label, "label2id": label2id,
    });
    // The JSON above is complete and valid for ModelConfig::from_json.
    ModelConfig::from_json(raw).unwrap_or_else(|e| unreachable!("tiny config: {e}"))
}

/// The tiny VideoMAE with random weights (seeded), with a 32-pixel ImageNet-normalising processor.
pub fn tiny_videomae(
    labels: &[String],
    seed: u64,
    device: &burn::tensor::Device,
) -> Result<VideoModel, crate::model::ModelError> {
    let processor = ImageProcessor {
        size: ProcessorSize::ShortestEdge { shortest_edge: 32 },
        crop_size: (32, 32),
        ..Default::default()
    };
    VideoModel::random(tiny_videomae_config(labels), processor, seed, device)
}

/// The demo's settings.
#[derive(Clone, Debug, Serialize)]
pub struct DemoOptions {
    /// The dataset.
    pub synth: SynthOptions,
    /// Epochs.
    pub epochs: usize,
    /// Peak learning rate (training from scratch wants far more than fine-tuning's 5e-5).
    pub lr: f64,
    /// Batch size.
    pub batch_size: usize,
    /// Seed of the model initialisation and training.
    pub seed: u64,
    /// Decoding threads.
    pub workers: usize,
    /// Where to compute.
    pub device: DeviceChoice,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            synth: SynthOptions::default(),
            epochs: 15,
            lr: 2e-3,
            batch_size: 8,
            seed: 0,
            workers: 2,
            device: DeviceChoice::Cpu,
        }
    }
}

/// The demo's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct DemoReport {
    /// Test accuracy of the best model.
    pub accuracy: f64,
    /// Test top-5 accuracy.
    pub top5_accuracy: f64,
    /// Test videos.
    pub test_videos: usize,
    /// Best val accuracy.
    pub val_accuracy: Option<f64>,
    /// Labels.
    pub labels: Vec<String>,
    /// The dataset (split layout).
    pub data_dir: PathBuf,
    /// The run folder.
    pub run_dir: PathBuf,
    /// The fine-tuned model (transformers layout).
    pub model_dir: Option<PathBuf>,
    /// The test evaluation (report.json, confusion.csv, confusion.png).
    pub eval_dir: PathBuf,
    /// Seconds spent, all in.
    pub seconds: f64,
    /// Training summary.
    pub train: TrainSummary,
}

/// What stopped the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The output folder is in use.
    #[error("{0}: not empty; remove it or pick another --out")]
    NotEmpty(PathBuf),
    /// Making the videos failed.
    #[error("making the synthetic videos: {0}")]
    Video(#[from] crate::video::VideoError),
    /// Splitting failed.
    #[error(transparent)]
    Dataset(#[from] crate::dataset::DatasetError),
    /// Training failed.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// Writing failed.
    #[error("{0}")]
    Io(String),
}

/// Stages of the demo before training, for progress display.
#[derive(Clone, Debug)]
pub enum DemoStage {
    /// Videos written so far.
    Generating(usize, usize),
    /// Training starts.
    Training,
}

/// Runs the demo in `out`: `data/` (flat), `split/`, `init-model/`, `run/`.
pub fn run(
    out: &Path,
    opts: &DemoOptions,
    stage: &mut dyn FnMut(DemoStage),
    events: &SyncSender<TrainEvent>,
    cancel: &AtomicBool,
) -> Result<DemoReport, DemoError> {
    let t0 = std::time::Instant::now();
    if out.exists() && std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(DemoError::NotEmpty(out.into()));
    }
    let flat = out.join("data");
    generate(&flat, &opts.synth, &mut |d, t| stage(DemoStage::Generating(d, t)))?;
    let split = out.join("split");
    split_folder(
        &flat,
        &split,
        &SplitOptions { val: 0.15, test: 0.2, seed: opts.seed, copy: false, group_aware: true, check_readable: false },
    )?;
    let labels: Vec<String> =
        MOTIONS[..opts.synth.classes.clamp(2, MOTIONS.len())].iter().map(|s| s.to_string()).collect();
    let init = out.join("init-model");
    let model =
        tiny_videomae(&labels, opts.seed, &crate::backend::cpu().device).map_err(|e| DemoError::Io(e.to_string()))?;
    model.export(&init).map_err(|e| DemoError::Io(e.to_string()))?;
    stage(DemoStage::Training);
    let cfg = TrainConfig {
        data: split.clone(),
        model: init.to_string_lossy().into_owned(),
        epochs: opts.epochs,
        batch_size: opts.batch_size,
        lr: opts.lr,
        seed: opts.seed,
        workers: opts.workers,
        // Clips of 16 frames (8 kept) of the 24: about half a second of motion.
        sample_rate: 2,
        // Flips would turn MovingLeft into MovingRight.
        flip_p: 0.0,
        device: opts.device,
        ..Default::default()
    };
    let run_dir = out.join("run");
    let summary = train(Some(&cfg), &run_dir, events, cancel)?;
    let eval_dir = run_dir.join("test-eval");
    let (accuracy, top5, videos) = match &summary.test {
        // train() wrote the report into run/test-eval.
        Some(r) => (r.accuracy, r.top5_accuracy, r.videos),
        None => (0.0, 0.0, 0),
    };
    Ok(DemoReport {
        accuracy,
        top5_accuracy: top5,
        test_videos: videos,
        val_accuracy: summary.best_accuracy,
        labels,
        data_dir: split,
        run_dir,
        model_dir: summary.best_dir.clone(),
        eval_dir,
        seconds: t0.elapsed().as_secs_f64(),
        train: summary,
    })
}
