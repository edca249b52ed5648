//! `vidi bench decode`: how fast a video file becomes the model's input tensor.
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
