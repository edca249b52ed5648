//! `vidi bench decode`, `vidi bench model` and `vidi bench train`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use vidi::model::Architecture;

use super::common::{compute, print_json};

/// `vidi bench ...`.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// File -> (1, 16, 3, 224, 224) normalised tensor, per file: clips/s, and FFmpeg's decode-only rate.
    ///
    /// Example: vidi bench decode tests/fixtures/clips/v_ApplyEyeMakeup_g01_c01.avi --runs 20
    Decode(BenchDecodeArgs),
    /// Forward latency, GFLOP/s and peak memory of the base-size models (random weights).
    ///
    /// Run one architecture per process for a clean peak-memory figure; compare with
    /// benches/python_model.py.
    ///
    /// Example: vidi bench model --arch videomae --runs 3 --device cpu
    Model(BenchModelArgs),
    /// Seconds per training step (forward, backward, AdamW) and clips/s, random weights
    /// and inputs; compare with benches/python_train.py.
    ///
    /// Example: vidi bench train --arch videomae --batch 2 --steps 3 --device cpu
    Train(BenchTrainArgs),
}

/// `vidi bench model`.
#[derive(Args, Debug)]
pub struct BenchModelArgs {
    /// Architecture.
    #[arg(long, value_enum)]
    pub arch: Architecture,
    /// Clips per forward pass.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Timed runs after one warm-up.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Where to compute.
    #[arg(long, value_enum)]
    pub device: Option<vidi::backend::DeviceChoice>,
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
    /// videomae, timesformer, vivit (base size, 400 labels) or tiny (the demo's model).
    #[arg(long, default_value = "videomae")]
    pub arch: String,
    /// Clips per step.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Timed steps after one warm-up.
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// Where to compute.
    #[arg(long, value_enum)]
    pub device: Option<vidi::backend::DeviceChoice>,
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

pub fn bench_model(a: BenchModelArgs) -> Result<()> {
    let compute = compute(a.device)?;
    let row = vidi::bench::bench_model(a.arch, a.batch.max(1), a.runs, &compute)?;
    if a.json {
        return print_json(&row);
    }
    println!(
        "{:<12} {:<22} {:>9} {:>8} {:>9} {:>10}  device",
        "arch", "input", "median_s", "GFLOP", "GFLOP/s", "peak_MiB"
    );
    println!(
        "{:<12} {:<22} {:>9.3} {:>8.1} {:>9.1} {:>10}  {}",
        row.arch,
        format!("{:?}", row.input),
        row.median_s,
        row.gflop,
        row.gflops,
        row.peak_rss_mib.map(|m| format!("{m:.0}")).unwrap_or_default(),
        row.device
    );
    Ok(())
}

pub fn bench_train(a: BenchTrainArgs) -> Result<()> {
    let cfg = match (a.arch.as_str(), Architecture::from_model_type(&a.arch)) {
        (_, Some(arch)) => vidi::bench::base_config(arch),
        ("tiny", None) => {
            let labels: Vec<String> = vidi::demo::MOTIONS.iter().map(|s| s.to_string()).collect();
            vidi::demo::tiny_videomae_config(&labels)
        }
        (other, None) => bail!("--arch '{other}' is not videomae, timesformer, vivit or tiny"),
    };
    let compute = compute(a.device)?;
    let row = vidi::bench::bench_train(&a.arch, cfg, a.batch.max(1), a.steps, &compute)?;
    if a.json {
        return print_json(&row);
    }
    println!("{:<12} {:>6} {:>10} {:>8} {:>10}  device", "model", "batch", "s/step", "clips/s", "peak_MiB");
    println!(
        "{:<12} {:>6} {:>10.3} {:>8.2} {:>10}  {}",
        row.model,
        row.batch,
        row.median_s,
        row.clips_per_s,
        row.peak_rss_mib.map(|m| format!("{m:.0}")).unwrap_or_default(),
        row.device
    );
    Ok(())
}
