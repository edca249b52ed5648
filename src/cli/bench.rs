//! `vidi bench decode`, `vidi bench model` and `vidi bench train`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use vidi::bench::BenchModel;
use vidi::model::Architecture;

use super::common::{compute, print_json};

/// `vidi bench ...`.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// File -> (1, 16, 3, 224, 224) normalised tensor, per file: clips/s, and FFmpeg's decode-only rate.
    ///
    /// Example: vidi bench decode tests/fixtures/clips/v_ApplyEyeMakeup_g01_c01.avi --runs 20
    Decode(BenchDecodeArgs),
    /// Forward latency, clips/s, GFLOP/s and peak memory (RSS; device memory on GPU runs)
    /// of a base-size model (random weights) or of a model folder.
    ///
    /// --model DIR takes a folder with a config.json (random weights of that shape) or a
    /// whole checkpoint. Run one model per process for a clean peak-memory figure;
    /// compare with benches/python_model.py.
    ///
    /// Example: vidi bench model --arch videomae --runs 3 --device cpu
    /// Example: vidi bench model --model ./my-model --frames 8 --device gpu --json
    Model(BenchModelArgs),
    /// Seconds per training step (forward, backward, AdamW), clips/s and peak memory
    /// (RSS; device memory on GPU runs), random inputs; compare with benches/python_train.py.
    /// On a GPU, also the kernels one step launches (forward+backward, the optimizer per
    /// parameter tensor) and one LayerNorm and MLP activation.
    ///
    /// --model DIR takes a folder with a config.json (random weights of that shape) or a
    /// whole checkpoint; --frames changes the clip length (and so the tokens).
    ///
    /// Example: vidi bench train --arch videomae --batch 2 --steps 3 --device cpu
    /// Example: vidi bench train --model ./my-model --frames 16 --device gpu --json
    Train(BenchTrainArgs),
    /// The wgpu adapters and their features (SHADER_F16, cooperative matrix), and the
    /// device the app's window would create, made headless, with a matmul on it
    /// checked against the CPU.
    ///
    /// Example: vidi bench adapter --json
    Adapter(BenchAdapterArgs),
}

/// `vidi bench adapter`.
#[derive(Args, Debug)]
pub struct BenchAdapterArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `vidi bench model`.
#[derive(Args, Debug)]
pub struct BenchModelArgs {
    /// Architecture (base size, 400 labels, random weights).
    #[arg(long, value_enum, required_unless_present = "model", conflicts_with = "model")]
    pub arch: Option<Architecture>,
    /// A model folder: a config.json alone (random weights) or a whole checkpoint.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Frames per clip (default: the model's num_frames).
    #[arg(long)]
    pub frames: Option<usize>,
    /// Clips per forward pass.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Timed runs after one warm-up.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Where to compute.
    #[arg(long, value_enum)]
    pub device: Option<vidi::backend::DeviceChoice>,
    /// Float precision: f16 on a GPU whose adapter has SHADER_F16 (refused elsewhere).
    #[arg(long, value_enum, default_value_t)]
    pub precision: vidi::backend::Precision,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `vidi bench decode`.
#[derive(Args, Debug)]
pub struct BenchDecodeArgs {
    /// Video files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Timed runs per measurement (after one warm-up).
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// Decoder threads (0: FFmpeg decides).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Print JSON rows.
    #[arg(long)]
    pub json: bool,
}

/// `vidi bench train`.
#[derive(Args, Debug)]
pub struct BenchTrainArgs {
    /// videomae, timesformer, vivit, vjepa2, videoprism (base size, 400 labels) or tiny (the demo's model).
    #[arg(long, default_value = "videomae", conflicts_with = "model")]
    pub arch: String,
    /// A model folder: a config.json alone (random weights) or a whole checkpoint.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Frames per clip (default: the model's num_frames).
    #[arg(long)]
    pub frames: Option<usize>,
    /// Clips per step.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Timed steps after one warm-up.
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// Decode workers of the loader measurement (default: the cores but one; 0: no loader row).
    #[arg(long, default_value_t = vidi::dataset::loader::default_workers())]
    pub workers: usize,
    /// Videos for the loader measurement (default: synthetic videos of 320x320 for a 224-pixel model).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub videos: Vec<PathBuf>,
    /// Where to compute.
    #[arg(long, value_enum)]
    pub device: Option<vidi::backend::DeviceChoice>,
    /// f16: mixed precision, as `vidi train --precision f16` trains (a GPU with SHADER_F16).
    #[arg(long, value_enum, default_value_t)]
    pub precision: vidi::backend::Precision,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn bench_decode(a: BenchDecodeArgs) -> Result<()> {
    let mut rows = Vec::new();
    for f in &a.files {
        rows.extend(vidi::bench::bench_decode(f, a.runs, a.threads)?);
    }
    if a.json {
        return print_json(&serde_json::json!({ "threads": a.threads, "rows": rows }));
    }
    println!("{:<20} {:<40} {:>10} {:>9} {:>10}", "stack", "file", "median_ms", "clips/s", "frames/s");
    for r in &rows {
        let name = r.file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        println!(
            "{:<20} {:<40} {:>10.2} {:>9.2} {:>10}",
            r.stack,
            name,
            r.median_ms,
            r.clips_per_s,
            r.frames_per_s.map(|f| format!("{f:.1}")).unwrap_or_default()
        );
    }
    Ok(())
}

/// "123.4" MiB of `bytes`, or "" when there is no figure.
fn mib(bytes: Option<u64>) -> String {
    bytes.map(|b| format!("{:.0}", b as f64 / (1024.0 * 1024.0))).unwrap_or_default()
}

pub fn bench_model(a: BenchModelArgs) -> Result<()> {
    let model = match (&a.model, a.arch) {
        (Some(dir), _) => BenchModel::Dir(dir.clone()),
        (None, Some(arch)) => BenchModel::base(arch),
        (None, None) => bail!("give --arch or --model DIR"),
    };
    let mut compute = compute(a.device)?;
    vidi::backend::set_precision(&mut compute, a.precision)?;
    let row = vidi::bench::bench_model(&model, a.frames, a.batch.max(1), a.runs, &compute)?;
    if a.json {
        return print_json(&row);
    }
    println!(
        "{:<12} {:<22} {:>9} {:>8} {:>8} {:>9} {:>9} {:>11}  device",
        "arch", "input", "median_s", "clips/s", "GFLOP", "GFLOP/s", "peak_MiB", "device_MiB"
    );
    println!(
        "{:<12} {:<22} {:>9.3} {:>8.2} {:>8.1} {:>9.1} {:>9} {:>11}  {}",
        row.arch,
        format!("{:?}", row.input),
        row.median_s,
        row.clips_per_s,
        row.gflop,
        row.gflops,
        row.peak_rss_mib.map(|m| format!("{m:.0}")).unwrap_or_default(),
        mib(row.peak_device_bytes),
        row.device
    );
    Ok(())
}

pub fn bench_train(a: BenchTrainArgs) -> Result<()> {
    // The --arch names of `bench model` (`videoprism`), or a model_type.
    let arch = <Architecture as clap::ValueEnum>::from_str(&a.arch, false)
        .ok()
        .or_else(|| Architecture::from_model_type(&a.arch));
    let model = match (&a.model, a.arch.as_str(), arch) {
        (Some(dir), _, _) => BenchModel::Dir(dir.clone()),
        (None, _, Some(arch)) => BenchModel::base(arch),
        (None, "tiny", None) => {
            let labels: Vec<String> = vidi::demo::MOTIONS.iter().map(|s| s.to_string()).collect();
            BenchModel::Config { name: "tiny".into(), config: vidi::demo::tiny_videomae_config(&labels) }
        }
        (None, other, None) => {
            bail!("--arch '{other}' is not videomae, timesformer, vivit, vjepa2, videoprism or tiny")
        }
    };
    let compute = compute(a.device)?;
    let loader = vidi::bench::LoaderSpec { workers: a.workers, videos: a.videos.clone() };
    vidi::backend::check_f16(&compute, a.precision)?;
    let row = vidi::bench::bench_train(&model, a.frames, a.batch.max(1), a.steps, &compute, &loader, a.precision)?;
    if a.json {
        return print_json(&row);
    }
    println!(
        "{:<12} {:>6} {:>7} {:>7} {:>10} {:>8} {:>14} {:>9} {:>11}  device",
        "model", "batch", "frames", "tokens", "s/step", "clips/s", "loader_clips/s", "peak_MiB", "device_MiB"
    );
    println!(
        "{:<12} {:>6} {:>7} {:>7} {:>10.3} {:>8.2} {:>14} {:>9} {:>11}  {}",
        row.model,
        row.batch,
        row.frames,
        row.tokens,
        row.median_s,
        row.clips_per_s,
        row.loader.as_ref().map(|l| format!("{:.2} ({}w)", l.clips_per_s, l.workers)).unwrap_or_default(),
        row.peak_rss_mib.map(|m| format!("{m:.0}")).unwrap_or_default(),
        mib(row.peak_device_bytes),
        row.device
    );
    if let Some(l) = &row.loader {
        println!("loader: {} clips of {} on {} workers, {:.2} clips/s", l.clips, l.source, l.workers, l.clips_per_s);
    }
    if a.precision == vidi::backend::Precision::F16 {
        println!(
            "mixed precision: {} of {} steps skipped (gradients past f16's range)",
            row.skipped_steps,
            a.steps + 1
        );
    }
    if let Some(k) = &row.kernels {
        println!(
            "kernels (fusion {}): forward+backward {}, optimizer {} ({:.1} per parameter tensor, {} tensors), LayerNorm {}, activation {}",
            if k.fusion { "on" } else { "off" },
            k.forward_backward,
            k.optimizer,
            k.optimizer_per_tensor,
            k.parameter_tensors,
            k.layer_norm,
            k.activation
        );
    }
    Ok(())
}

pub fn bench_adapter(a: BenchAdapterArgs) -> Result<()> {
    let report = vidi::bench::bench_adapter();
    if a.json {
        return print_json(&report);
    }
    for ad in &report.adapters {
        println!(
            "adapter: {} ({}, {}; {}) SHADER_F16 {}, cooperative matrix {}",
            ad.name, ad.backend, ad.device_type, ad.driver, ad.shader_f16, ad.cooperative_matrix
        );
        println!("  features: {}", ad.features.join(" "));
    }
    let on = |b: bool| if b { "on" } else { "off" };
    println!("build: fusion {}, autotune {}", on(report.fusion), on(report.autotune));
    match (&report.window_device, &report.window_matmul_max_abs_diff) {
        (Ok(d), Some(diff)) => println!("window device, headless: {d}; matmul vs CPU max |diff| {diff:.2e}"),
        (Ok(d), None) => println!("window device, headless: {d}"),
        (Err(e), _) => println!("window device, headless: FAILED: {e}"),
    }
    Ok(())
}
