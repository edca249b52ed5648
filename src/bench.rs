//! `vidi bench decode`: how fast a video file becomes the model's input tensor;
//! `vidi bench model` and `vidi bench train`: forward passes and training steps.
//!
//! For each file, the median over runs of:
//! - `vidi_processor`: 16 frames spread over the whole video, through the
//!   checkpoint's image processor (resize shortest edge 224, centre crop 224,
//!   rescale, normalise) -> (1, 16, 3, 224, 224). The transformers pipeline's
//!   processing, as `benches/python_decode.py`'s `hf_pil` row.
//! - `vidi_guide_val`: the guide's val path (clip of 64/30 s from the start,
//!   UniformTemporalSubsample(16), /255, Normalize, Resize(224, 224)); as `ptv_guide_val`.
//! - `ffmpeg_decode_only`: decoding every frame, no conversion — the ceiling.
//! - `vidi_processor_Nw`: the `vidi_processor` path on N worker threads, one
//!   single-threaded decoder each (how the dataset loader runs); ms per clip
//!   is wall time divided by clips.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::dataset::presets::{Preset, ValPreset};
use crate::dataset::transforms::ImageProcessor;
use crate::video::{decode_count_only, decode_time_range_subsampled, decode_uniform, DecodeOptions, VideoError};

/// One measured row.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    /// Which path was measured.
    pub stack: String,
    /// The file.
    pub file: PathBuf,
    /// Median milliseconds per clip (per file pass for the decode-only row).
    pub median_ms: f64,
    /// 1000 / median.
    pub clips_per_s: f64,
    /// Frames per second (decode-only row).
    pub frames_per_s: Option<f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn time_runs(runs: usize, mut f: impl FnMut() -> Result<usize, VideoError>) -> Result<(f64, usize), VideoError> {
    let mut last = f()?; // warm-up
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        last = f()?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((median(times), last))
}

/// Measures the three paths on `file` with `threads` decoder threads.
pub fn bench_decode(file: &Path, runs: usize, threads: usize) -> Result<Vec<BenchRow>, VideoError> {
    let opts = DecodeOptions { threads, ..Default::default() };
    let processor = ImageProcessor::default();
    let row = |stack: &str, ms: f64, fps: Option<f64>| BenchRow {
        stack: stack.into(),
        file: file.into(),
        median_ms: ms,
        clips_per_s: 1000.0 / ms,
        frames_per_s: fps,
    };
    let (ms_proc, _) = time_runs(runs, || {
        let (frames, _) = decode_uniform(file, 16, &opts)?;
        let clip = processor
            .apply_threaded(&frames, threads.max(1))
            .map_err(|_| VideoError::NoFrames { path: file.into() })?;
        Ok(clip.data.len())
    })?;
    let preset = Preset::Val(ValPreset::default());
    let (ms_val, _) = time_runs(runs, || {
        let tf = decode_time_range_subsampled(file, 0.0, 64.0 / 30.0, 16, &opts)?;
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
        let clip = preset.apply(&tf.frames, &mut rng).map_err(|_| VideoError::NoFrames { path: file.into() })?;
        Ok(clip.data.len())
    })?;
    let (ms_dec, frames) = time_runs(runs, || decode_count_only(file, &opts))?;
    // Throughput as a dataset loader gets it: `threads` workers, one clip each at a time.
    let workers = threads.max(1);
    let single = DecodeOptions { threads: 1, ..Default::default() };
    let clips = (runs.max(1) * workers) as f64;
    let t = Instant::now();
    let failed = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    (0..runs.max(1)).any(|_| match decode_uniform(file, 16, &single) {
                        Ok((frames, _)) => processor.apply(&frames).is_err(),
                        Err(_) => true,
                    })
                })
            })
            .collect();
        handles.into_iter().any(|h| h.join().unwrap_or(true))
    });
    if failed {
        return Err(VideoError::NoFrames { path: file.into() });
    }
    let ms_workers = t.elapsed().as_secs_f64() * 1000.0 / clips;
    Ok(vec![
        row("ffmpeg_decode_only", ms_dec, Some(frames as f64 * 1000.0 / ms_dec)),
        row("vidi_processor", ms_proc, None),
        row("vidi_guide_val", ms_val, None),
        row(&format!("vidi_processor_{workers}w"), ms_workers, None),
    ])
}

/// One `vidi bench model` row.
#[derive(Clone, Debug, Serialize)]
pub struct ModelBenchRow {
    /// Architecture.
    pub arch: String,
    /// The model: the architecture (base size), or the folder given.
    pub model: String,
    /// "random" or "checkpoint".
    pub weights: &'static str,
    /// Input shape (B, T, C, H, W).
    pub input: [usize; 5],
    /// Tokens per clip.
    pub tokens: usize,
    /// Median forward latency in seconds.
    pub median_s: f64,
    /// The same: seconds per forward pass.
    pub s_per_pass: f64,
    /// Clips per second at the median.
    pub clips_per_s: f64,
    /// GFLOP of one forward pass (matmuls only, counted from the config).
    pub gflop: f64,
    /// Achieved GFLOP/s.
    pub gflops: f64,
    /// Peak resident memory of the process after the runs, MiB (Linux VmHWM).
    pub peak_rss_mib: Option<f64>,
    /// The same in bytes.
    pub peak_rss_bytes: Option<u64>,
    /// GPU runs: the most device memory in use at the sampled points
    /// ([`DevicePeak`]); `null` on the CPU.
    pub peak_device_bytes: Option<u64>,
    /// GPU runs: the most device memory the allocator held (its pools keep freed pages for reuse).
    pub device_reserved_bytes: Option<u64>,
    /// Where it ran.
    pub device: String,
}

/// The model a benchmark runs.
#[derive(Clone, Debug)]
pub enum BenchModel {
    /// A configuration (the Hub base size of an architecture, the demo's tiny
    /// model), random weights.
    Config {
        /// Its name in the rows.
        name: String,
        /// The configuration.
        config: crate::model::ModelConfig,
    },
    /// A folder with a `config.json` (random weights of that shape) or a
    /// whole checkpoint (its weights, unless `frames` changes the shape).
    Dir(PathBuf),
}

impl BenchModel {
    /// The base size of `arch` (as the Hub checkpoints), 400 labels.
    pub fn base(arch: crate::model::Architecture) -> BenchModel {
        BenchModel::Config { name: arch.model_type().into(), config: base_config(arch) }
    }

    /// Its name in the rows.
    pub fn name(&self) -> String {
        match self {
            BenchModel::Config { name, .. } => name.clone(),
            BenchModel::Dir(dir) => dir.display().to_string(),
        }
    }

    /// The model on `device`, with `frames` frames per clip when given, and
    /// whether its weights are "random" or the "checkpoint"'s.
    pub fn build(
        &self,
        frames: Option<usize>,
        device: &burn::tensor::Device,
    ) -> Result<(crate::model::VideoModel, &'static str), crate::model::ModelError> {
        use crate::model::{ModelConfig, ModelError, VideoModel};
        let mut cfg = match self {
            BenchModel::Config { config, .. } => config.clone(),
            BenchModel::Dir(dir) => {
                if !dir.is_dir() {
                    let source = std::io::Error::new(std::io::ErrorKind::NotFound, "no such model folder");
                    return Err(ModelError::Io { path: dir.clone(), source });
                }
                ModelConfig::from_dir(dir)?
            }
        };
        let reshaped = frames.is_some_and(|f| f != cfg.num_frames);
        if let Some(f) = frames {
            if f == 0 || f % cfg.tubelet_size != 0 {
                return Err(ModelError::BadConfig {
                    path: PathBuf::from("--frames"),
                    reason: format!("{f} frames: give a positive multiple of the tubelet size {}", cfg.tubelet_size),
                });
            }
            cfg.num_frames = f;
        }
        if let BenchModel::Dir(dir) = self {
            let has_weights = ["model.safetensors", "pytorch_model.bin"].iter().any(|f| dir.join(f).is_file());
            if has_weights && !reshaped {
                let (model, _) = VideoModel::load(dir, &Default::default(), device)?;
                return Ok((model, "checkpoint"));
            }
        }
        Ok((VideoModel::random(cfg, Default::default(), 0, device)?, "random"))
    }
}

/// The most device memory in use at the points [`DevicePeak::sample`] is
/// called (on GPU runs; Burn's allocator reports no high-water mark of its
/// own): after each forward pass, when everything the backward pass needs is
/// held, and after each backward pass and optimizer step.
#[derive(Clone, Debug, Default)]
pub struct DevicePeak {
    in_use: Option<u64>,
    reserved: Option<u64>,
}

impl DevicePeak {
    /// Takes a sample on `device` (nothing on the CPU).
    pub fn sample(&mut self, device: &burn::tensor::Device) {
        if let Some((in_use, reserved)) = crate::backend::device_memory(device) {
            self.in_use = Some(self.in_use.unwrap_or(0).max(in_use));
            self.reserved = Some(self.reserved.unwrap_or(0).max(reserved));
        }
    }
}

/// Input pixels of a benchmark: a fixed ramp in [-1, 1].
fn ramp(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i % 251) as f32 / 125.0) - 1.0).collect()
}

/// The base-size config of an architecture (as the Hub checkpoints), with 400 labels.
pub fn base_config(arch: crate::model::Architecture) -> crate::model::ModelConfig {
    let raw = serde_json::json!({"model_type": arch.model_type(), "num_labels": 400});
    crate::model::ModelConfig::from_json(raw).unwrap_or_else(|e| unreachable!("built-in config: {e}"))
}

/// Multiply-accumulate FLOPs of one forward pass (2 per MAC), attention and MLP matmuls included.
pub fn forward_gflop(cfg: &crate::model::ModelConfig, batch: usize) -> f64 {
    use crate::model::Architecture;
    let d = cfg.hidden_size as f64;
    let m = cfg.intermediate_size as f64;
    let patch_in = (cfg.num_channels * cfg.tubelet_size * cfg.patch_size * cfg.patch_size) as f64;
    let n = cfg.num_patches() as f64;
    let layers = cfg.num_hidden_layers as f64;
    let embed = 2.0 * n * patch_in * d;
    let per_layer = match cfg.arch {
        Architecture::VideoMae | Architecture::Vivit | Architecture::Vjepa2 => {
            let tokens = n + if cfg.arch == Architecture::Vivit { 1.0 } else { 0.0 };
            2.0 * tokens * (4.0 * d * d + 2.0 * d * m) + 2.0 * 2.0 * tokens * tokens * d
        }
        Architecture::Timesformer => {
            let f = cfg.num_frames as f64;
            let p = n / f;
            // temporal: attention over f tokens for each patch, + temporal_dense
            let temporal = 2.0 * n * (4.0 * d * d + d * d) + 2.0 * 2.0 * p * f * f * d;
            // spatial: per frame, 1 + p tokens
            let spatial = 2.0 * f * (p + 1.0) * 4.0 * d * d + 2.0 * 2.0 * f * (p + 1.0) * (p + 1.0) * d;
            temporal + spatial + 2.0 * (n + 1.0) * 2.0 * d * m
        }
        Architecture::VideoPrism => {
            // Spatial blocks over f frames of p patches, then temporal ones over p
            // sequences of f frames; `layers` is the spatial count, so this is their total over it.
            let f = cfg.num_frames as f64;
            let p = n / f;
            let spatial = 2.0 * n * (4.0 * d * d + 2.0 * d * m) + 2.0 * 2.0 * f * p * p * d;
            let temporal = 2.0 * n * (4.0 * d * d + 2.0 * d * m) + 2.0 * 2.0 * p * f * f * d;
            let (s, t) = (cfg.num_hidden_layers as f64, cfg.num_temporal_layers as f64);
            (s * spatial + t * temporal) / layers.max(1.0)
        }
    };
    // V-JEPA 2's attentive pooler: self-attention blocks (MLP 4 x hidden) over the tokens,
    // then the query token's cross-attention (keys and values of every token) and MLP.
    let pooler = if cfg.arch == Architecture::Vjepa2 {
        let block = 2.0 * n * (4.0 * d * d + 8.0 * d * d) + 2.0 * 2.0 * n * n * d;
        let cross = 2.0 * n * 2.0 * d * d + 2.0 * d * d + 2.0 * 2.0 * n * d + 2.0 * 8.0 * d * d;
        cfg.num_pooler_layers as f64 * block + cross
    } else {
        0.0
    };
    batch as f64 * (embed + layers * per_layer + pooler) / 1e9
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Times `runs` forward passes (after one warm-up) of `model` on `batch` clips.
pub fn bench_model(
    model: &BenchModel,
    frames: Option<usize>,
    batch: usize,
    runs: usize,
    compute: &crate::backend::Compute,
) -> Result<ModelBenchRow, crate::model::ModelError> {
    let (net, weights) = model.build(frames, &compute.device)?;
    let cfg = net.config.clone();
    let input = [batch, cfg.num_frames, cfg.num_channels, cfg.image_size, cfg.image_size];
    let pixels = crate::model::weights::HostTensor::new(input.to_vec(), ramp(input.iter().product()));
    let mut peak = DevicePeak::default();
    net.forward_host(pixels.clone())?; // warm-up (and GPU kernel compilation)
    peak.sample(&compute.device);
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        net.forward_host(pixels.clone())?;
        times.push(t.elapsed().as_secs_f64());
        peak.sample(&compute.device);
    }
    let median_s = median(times);
    let gflop = forward_gflop(&cfg, batch);
    let rss = peak_rss_mib();
    Ok(ModelBenchRow {
        arch: cfg.arch.model_type().into(),
        model: model.name(),
        weights,
        input,
        tokens: cfg.num_patches(),
        median_s,
        s_per_pass: median_s,
        clips_per_s: batch as f64 / median_s,
        gflop,
        gflops: gflop / median_s,
        peak_rss_mib: rss,
        peak_rss_bytes: rss.map(|m| (m * 1024.0 * 1024.0) as u64),
        peak_device_bytes: peak.in_use,
        device_reserved_bytes: peak.reserved,
        device: compute.description.clone(),
    })
}

/// One `vidi bench train` row.
#[derive(Clone, Debug, Serialize)]
pub struct TrainBenchRow {
    /// Model ("videomae", ... or "tiny", or the folder given).
    pub model: String,
    /// "random" or "checkpoint".
    pub weights: &'static str,
    /// Clips per step.
    pub batch: usize,
    /// Frames per clip.
    pub frames: usize,
    /// Tokens per clip.
    pub tokens: usize,
    /// Median seconds per optimizer step (forward, backward, clipping, AdamW).
    pub median_s: f64,
    /// The same: seconds per step.
    pub s_per_step: f64,
    /// Clips per second at the median.
    pub clips_per_s: f64,
    /// Peak resident memory of the process, MiB (Linux VmHWM).
    pub peak_rss_mib: Option<f64>,
    /// The same in bytes.
    pub peak_rss_bytes: Option<u64>,
    /// GPU runs: the most device memory in use at the sampled points
    /// ([`DevicePeak`]); `null` on the CPU.
    pub peak_device_bytes: Option<u64>,
    /// GPU runs: the most device memory the allocator held (its pools keep freed pages for reuse).
    pub device_reserved_bytes: Option<u64>,
    /// Where it ran.
    pub device: String,
    /// The dataset loader's throughput for this model's clips ([`bench_loader`]), measured
    /// before the steps; `None` when not asked for.
    pub loader: Option<LoaderBench>,
    /// GPU runs: the kernels one more step launches (after the timed ones);
    /// `null` on the CPU.
    pub kernels: Option<KernelCounts>,
    /// "f32", or "f16" for mixed precision (products in f16, f32 weights and moments).
    pub precision: crate::backend::Precision,
    /// Mixed-precision steps skipped (gradients not finite at the loss scale
    /// of the moment), of the warm-up and timed steps.
    pub skipped_steps: usize,
}

/// The GPU kernels of one training step, counted by cubecl's launch observer
/// ([`crate::backend::kernel_launches`]) in the steady state, and of one
/// LayerNorm and one MLP activation on a `[batch, tokens, hidden]` input.
#[derive(Clone, Debug, Serialize)]
pub struct KernelCounts {
    /// Whether Burn's kernel fusion is compiled in (the `fusion` feature).
    pub fusion: bool,
    /// The model's parameter tensors.
    pub parameter_tensors: usize,
    /// Kernels of the forward pass, the loss and the backward pass.
    pub forward_backward: usize,
    /// Kernels of the optimizer step (gradient norm, clipping and AdamW).
    pub optimizer: usize,
    /// `optimizer / parameter_tensors`.
    pub optimizer_per_tensor: f64,
    /// Kernels of one LayerNorm.
    pub layer_norm: usize,
    /// Kernels of one MLP activation (`hidden_act`).
    pub activation: usize,
    /// The optimizer step's kernels by name.
    pub optimizer_kernels: BTreeMap<String, usize>,
}

/// What [`bench_train`] feeds the dataset loader: `workers` threads (0: no
/// loader measurement) over `videos` (none: synthetic ones).
#[derive(Clone, Debug, Default)]
pub struct LoaderSpec {
    /// Decode workers; 0 skips the loader.
    pub workers: usize,
    /// Video files; empty for synthetic videos.
    pub videos: Vec<PathBuf>,
}

/// Times `steps` training steps (after one warm-up) of `model` with random
/// inputs, and before them the dataset loader for the model's clips (`loader`).
/// `precision` f16 trains in mixed precision, as `vidi train --precision f16`
/// does (the caller checks the device can: [`crate::backend::check_f16`]).
pub fn bench_train(
    model: &BenchModel,
    frames: Option<usize>,
    batch: usize,
    steps: usize,
    compute: &crate::backend::Compute,
    loader: &LoaderSpec,
    precision: crate::backend::Precision,
) -> Result<TrainBenchRow, crate::model::ModelError> {
    use crate::train::optim::{AdamW, AdamWConfig, GradAccumulator, LossScaler};
    let mut scaler = (precision == crate::backend::Precision::F16).then(LossScaler::default);
    let device = compute.device.clone().autodiff();
    let (mut net, weights) = model.build(frames, &device)?;
    let cfg = net.config.clone();
    let loader = match loader.workers {
        0 => None,
        w => Some(bench_loader(&net, &loader.videos, batch, w, (4 * batch).max(2 * w).max(12)).map_err(|e| {
            crate::model::ModelError::BadConfig { path: PathBuf::from("loader"), reason: e.to_string() }
        })?),
    };
    let shape = [batch, cfg.num_frames, cfg.num_channels, cfg.image_size, cfg.image_size];
    let k = net.labels.len().max(1);
    let mut opt = AdamW::new(AdamWConfig::default());
    let pixels = ramp(shape.iter().product());
    let labels: Vec<usize> = (0..batch).map(|i| i % k).collect();
    let mut peak = DevicePeak::default();
    let (mut times, mut skipped_steps) = (Vec::new(), 0);
    for i in 0..=steps.max(1) {
        let t = Instant::now();
        let mut acc = GradAccumulator::new(scaler.as_ref().map(|s| s.scale));
        let x = burn::tensor::Tensor::<5>::from_data(burn::tensor::TensorData::new(pixels.clone(), shape), &device);
        let (loss, _) = crate::train::micro_loss(&net, x, &labels, 1.0 / batch as f64, 0, acc.loss_scale())?;
        peak.sample(&device);
        let grads = loss.backward();
        peak.sample(&device);
        acc.add(&net.net, &grads);
        drop(grads);
        let info;
        (net, info) = crate::train::apply_step(net, &mut opt, acc, 5e-5);
        if let Some(s) = &mut scaler {
            s.update(!info.skipped);
        }
        skipped_steps += usize::from(info.skipped);
        let _ = net.device.sync();
        peak.sample(&device);
        if i > 0 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    let median_s = median(times);
    let rss = peak_rss_mib();
    let kernels = match compute.is_gpu {
        true => {
            Some(count_kernels(net, &mut opt, &pixels, shape, &labels, (&compute.device, scaler.map(|s| s.scale)))?)
        }
        false => None,
    };
    Ok(TrainBenchRow {
        model: model.name(),
        weights,
        batch,
        frames: cfg.num_frames,
        tokens: cfg.num_patches(),
        median_s,
        s_per_step: median_s,
        clips_per_s: batch as f64 / median_s,
        peak_rss_mib: rss,
        peak_rss_bytes: rss.map(|m| (m * 1024.0 * 1024.0) as u64),
        peak_device_bytes: peak.in_use,
        device_reserved_bytes: peak.reserved,
        device: match precision {
            crate::backend::Precision::F16 => format!("{}, mixed precision f16", compute.description),
            crate::backend::Precision::F32 => compute.description.clone(),
        },
        loader,
        kernels,
        precision,
        skipped_steps,
    })
}

/// One more training step, as the Trainer takes it, its kernels counted, then
/// a LayerNorm and an activation of `net`'s width.
fn count_kernels(
    net: crate::model::VideoModel,
    opt: &mut crate::train::optim::AdamW,
    pixels: &[f32],
    shape: [usize; 5],
    labels: &[usize],
    (plain, loss_scale): (&burn::tensor::Device, Option<f64>),
) -> Result<KernelCounts, crate::model::ModelError> {
    use crate::backend::kernel_launches;
    use crate::backend::ops::{activation, layer_norm};
    use burn::tensor::{Distribution, Tensor};
    struct Tensors(usize);
    impl burn::module::ModuleVisitor for Tensors {
        fn visit_float<const D: usize>(&mut self, _: &burn::module::Param<Tensor<D>>) {
            self.0 += 1;
        }
    }
    let mut tensors = Tensors(0);
    burn::module::Module::visit(&net.net, &mut tensors);
    let device = net.device.clone();
    // The Trainer's own forward and backward pass (`train::accumulate`).
    let mut acc = crate::train::optim::GradAccumulator::new(loss_scale);
    let scale = 1.0 / shape[0] as f64;
    let (loss, forward_backward) =
        kernel_launches(&device, || crate::train::accumulate(&net, pixels.to_vec(), shape, labels, scale, 0, &mut acc));
    loss?;
    let cfg = net.config.clone();
    let (_, optimizer) = kernel_launches(&device, || crate::train::apply_step(net, opt, acc, 5e-5));
    // The width and the token count of the model's blocks, on the plain device.
    let x = Tensor::<3>::random([shape[0], cfg.num_patches(), cfg.hidden_size], Distribution::Normal(0.0, 1.0), plain);
    let (g, b) = (Tensor::<1>::ones([cfg.hidden_size], plain), Tensor::<1>::zeros([cfg.hidden_size], plain));
    let (mut norm, mut act): (BTreeMap<String, usize>, BTreeMap<String, usize>) = Default::default();
    for _ in 0..2 {
        // `+ 0.0` ends each fused chain where the model would go on; the
        // second count is the one kept (the first compiles).
        norm = kernel_launches(plain, || layer_norm(x.clone(), g.clone(), b.clone(), cfg.layer_norm_eps) + 0.0).1;
        act = kernel_launches(plain, || activation(x.clone(), cfg.hidden_act) + 0.0).1;
    }
    let total = |m: &BTreeMap<String, usize>| m.values().sum::<usize>();
    Ok(KernelCounts {
        fusion: cfg!(feature = "fusion"),
        parameter_tensors: tensors.0,
        forward_backward: total(&forward_backward),
        optimizer: total(&optimizer),
        optimizer_per_tensor: total(&optimizer) as f64 / tensors.0.max(1) as f64,
        layer_norm: total(&norm),
        activation: total(&act),
        optimizer_kernels: optimizer,
    })
}

/// How fast the dataset loader feeds a training step: clips through the
/// train augmentation of a model's preset on worker threads, as `vidi
/// train` loads them.
#[derive(Clone, Debug, Serialize)]
pub struct LoaderBench {
    /// Clips loaded per second (wall time of the whole pass).
    pub clips_per_s: f64,
    /// Clips loaded.
    pub clips: usize,
    /// Decode workers.
    pub workers: usize,
    /// The videos: "synthetic WxW, N frames" or how many files were given.
    pub source: String,
}

/// Times the loader over `videos` (or, when empty, a few synthetic motion
/// videos of a UCF101-like size made in a temporary folder and removed after)
/// with the train preset of `model`, `workers` threads, batches of `batch`:
/// at least `clips` clips, the videos repeated as often as needed.
pub fn bench_loader(
    model: &crate::model::VideoModel,
    videos: &[PathBuf],
    batch: usize,
    workers: usize,
    clips: usize,
) -> Result<LoaderBench, VideoError> {
    use crate::dataset::loader::{Item, Loader, LoaderOptions};
    let cfg = crate::train::TrainConfig::default();
    let preset = Preset::Train(crate::train::train_preset(model, &cfg));
    let tmp = std::env::temp_dir().join(format!("vidi-bench-loader-{}", std::process::id()));
    let (files, source) = if videos.is_empty() {
        // 320 pixels for a 224-pixel model (the preset's largest short side), as UCF101's 320x240.
        let size = ((model.config.image_size * 320).div_ceil(224) as u32).next_multiple_of(2);
        let frames = model.config.num_frames * cfg.sample_rate + 16;
        let synth = crate::demo::SynthOptions { classes: 2, per_class: 3, size, frames, fps: 30, seed: 0 };
        let files = crate::demo::generate(&tmp, &synth, &mut |_, _| {});
        (files, format!("synthetic {size}x{size}, {frames} frames"))
    } else {
        (Ok(videos.to_vec()), format!("{} files", videos.len()))
    };
    let files = files.inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&tmp);
    })?;
    let items: Vec<Item> = (0..clips.max(files.len()))
        .map(|i| Item { path: files[i % files.len()].clone(), label: 0, duration_s: None })
        .collect();
    let opts = LoaderOptions { batch_size: batch.max(1), workers: workers.max(1), ..Default::default() };
    let t = Instant::now();
    let (mut loaded, mut failed) = (0, None);
    for b in Loader::new(items, preset, &opts) {
        loaded += b.labels.len();
        failed = failed.or(b.skipped.into_iter().next());
    }
    let secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&tmp);
    if let (0, Some((path, _))) = (loaded, failed) {
        return Err(VideoError::NoFrames { path });
    }
    Ok(LoaderBench { clips_per_s: loaded as f64 / secs, clips: loaded, workers: opts.workers, source })
}

/// `vidi bench adapter`: the adapters, and the window's device made headless.
#[derive(Clone, Debug, Serialize)]
pub struct AdapterBench {
    /// Every adapter wgpu sees.
    pub adapters: Vec<crate::backend::AdapterReport>,
    /// The window's device ([`crate::backend::window_device_headless`]): its description, or why it failed.
    pub window_device: Result<String, String>,
    /// A 64x48 by 48x32 matmul on that device against the CPU's.
    pub window_matmul_max_abs_diff: Option<f32>,
    /// Whether this build has Burn's kernel fusion (cargo feature `fusion`).
    pub fusion: bool,
    /// Whether this build has Burn's autotune (cargo feature `autotune`).
    pub autotune: bool,
}

/// The adapters wgpu sees, and the device the window would create, made
/// without a window, with a matmul on it against the CPU.
pub fn bench_adapter() -> AdapterBench {
    use burn::tensor::{Tensor, TensorData};
    let adapters = crate::backend::adapter_reports();
    let made = crate::backend::window_device_headless();
    let diff = made.as_ref().ok().map(|c| {
        let (a, b) = (ramp(64 * 48), ramp(48 * 32).into_iter().map(|x| x * 0.5).collect::<Vec<_>>());
        let on = |d: &burn::tensor::Device| {
            let x = Tensor::<2>::from_data(TensorData::new(a.clone(), [64, 48]), d);
            let y = Tensor::<2>::from_data(TensorData::new(b.clone(), [48, 32]), d);
            crate::backend::to_host(x.matmul(y)).data
        };
        let (gpu, cpu) = (on(&c.device), on(&crate::backend::host_device()));
        gpu.iter().zip(&cpu).map(|(g, c)| (g - c).abs()).fold(0.0f32, f32::max)
    });
    AdapterBench {
        adapters,
        window_device: made.map(|c| c.description),
        window_matmul_max_abs_diff: diff,
        fusion: cfg!(feature = "fusion"),
        autotune: cfg!(feature = "autotune"),
    }
}
