//! Classifying videos: the transformers `video-classification` pipeline
//! (frame sampling, the checkpoint's image processor, softmax, top-k), plus
//! whole-video and multi-clip sampling.
//!
//! Decoding and preprocessing run on worker threads, overlapped with the
//! model; clips are batched (every clip has the processor's crop size).

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

use rand::SeedableRng;
use serde::Serialize;

use crate::dataset::loader::Item;
use crate::dataset::presets::{Preset, ValPreset};
use crate::dataset::sampler::{guide_clip_duration, ClipSampler, Segment};
use crate::dataset::transforms::Clip;
use crate::model::weights::HostTensor;
use crate::model::VideoModel;
use crate::video::indices::{pipeline_indices, video_processor_indices, whole_video_indices};
use crate::video::{
    decode_indices, decode_spread, decode_time_range_subsampled, decode_uniform, probe, probe_stream, without_path,
    DecodeOptions, RgbFrame, VideoError,
};

/// How frames are chosen from a video.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    /// The pipeline's: `num_frames` frames at `linspace(0, num_frames * rate - 1)` — the
    /// start of the video only. Matches transformers exactly. For V-JEPA 2, whose
    /// checkpoints have a video processor, the pipeline's video-processor path:
    /// `num_frames` frames at `arange(num_frames) * frames // num_frames` over the whole video.
    #[default]
    Pipeline,
    /// `num_frames` frames spread over the whole video: sees all of it, usually better
    /// for clips longer than `num_frames * rate` frames.
    Uniform,
    /// Several clips spread over the video (`--clips`), softmax scores averaged: the
    /// multi-view protocol of the VideoMAE paper; most accurate, `--clips` times slower.
    Multi,
    /// The view `vidi eval` scores (the guide's validation transform): the first of
    /// the uniform clip windows of `num_frames x 4 / 30` s, resized to the model's
    /// size. The same scores as evaluation gives the video.
    Eval,
}

/// Options for [`classify`].
#[derive(Clone, Debug)]
pub struct ClassifyOptions {
    /// Labels to report (capped at the label count).
    pub top_k: usize,
    /// The pipeline's `frame_sampling_rate`.
    pub frame_sampling_rate: usize,
    /// Frame choice.
    pub sampling: Sampling,
    /// Clips for [`Sampling::Multi`].
    pub clips: usize,
    /// Clips per model call.
    pub batch_size: usize,
    /// Decoding / preprocessing threads.
    pub workers: usize,
    /// The video stream to read (its index in the container); the first video stream when `None`.
    pub stream: Option<usize>,
    /// How long a server may stay silent while a URL downloads.
    pub url_timeout: std::time::Duration,
    /// Told of each URL download's bytes (received, total when known).
    pub on_download: Option<DownloadProgress>,
    /// The views of [`Sampling::Eval`] (a run's model: its run's frame step and fps).
    pub eval_views: Views,
}

/// A callback for URL downloads: (the URL, bytes received, total when the server says it).
#[derive(Clone)]
pub struct DownloadProgress(pub std::sync::Arc<dyn Fn(&str, u64, Option<u64>) + Send + Sync>);

impl std::fmt::Debug for DownloadProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DownloadProgress")
    }
}

impl Default for ClassifyOptions {
    fn default() -> Self {
        ClassifyOptions {
            top_k: 5,
            frame_sampling_rate: 1,
            sampling: Sampling::Pipeline,
            clips: 3,
            batch_size: 4,
            workers: 2,
            stream: None,
            url_timeout: std::time::Duration::from_secs(30),
            on_download: None,
            eval_views: Views::default(),
        }
    }
}

/// One label and its probability.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Prediction {
    /// Label name.
    pub label: String,
    /// Softmax probability.
    pub score: f32,
}

/// The result for one video.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum VideoResult {
    /// Top-k labels, highest first.
    Ok {
        /// The video.
        video: PathBuf,
        /// Predictions.
        predictions: Vec<Prediction>,
    },
    /// The video could not be classified.
    Err {
        /// The video.
        video: PathBuf,
        /// Why, in one line.
        error: String,
    },
}

/// Frame indices for one clip of `n` frames at `rate` starting at frame `start`.
fn clip_indices(start: usize, n: usize, rate: usize) -> Vec<usize> {
    pipeline_indices(n, rate).into_iter().map(|i| i + start).collect()
}

/// Decodes and preprocesses the clips of one video: (clips, T, 3, H, W) values.
///
/// Each clip is preprocessed as soon as it is decoded, and very large frames
/// are scaled down as they are decoded (see [`crate::video::FrameBound`]), so
/// memory does not grow with the resolution or with `--clips`.
pub fn prepare(model: &VideoModel, video: &Path, opts: &ClassifyOptions) -> Result<Vec<HostTensor>, VideoError> {
    let n = model.config.num_frames;
    let dec =
        DecodeOptions { threads: 1, bound: model.processor.frame_bound(), stream: opts.stream, ..Default::default() };
    let process = |frames: Vec<RgbFrame>| -> Result<HostTensor, VideoError> {
        let clip = model.processor.apply(&frames).map_err(|_| VideoError::NoFrames { path: video.to_path_buf() })?;
        Ok(HostTensor::new(vec![clip.t, clip.c, clip.h, clip.w], clip.data))
    };
    match opts.sampling {
        // A model with a video processor (V-JEPA 2): the pipeline's video-processor path samples
        // `arange(n) * frames // n` over the whole video, whatever frame_sampling_rate says.
        Sampling::Pipeline if model.config.arch == crate::model::Architecture::Vjepa2 => {
            Ok(vec![process(decode_spread(video, n, &dec, video_processor_indices)?.0)?])
        }
        Sampling::Pipeline => {
            let idx = clip_indices(0, n, opts.frame_sampling_rate.max(1));
            match decode_indices(video, &idx, &dec) {
                Ok(f) => Ok(vec![process(f)?]),
                // Shorter than the window: spread over what is there (the pipeline itself would fail).
                Err(VideoError::Truncated { readable, .. }) if readable > 0 => {
                    Ok(vec![process(decode_indices(video, &whole_video_indices(readable, n), &dec)?)?])
                }
                Err(e) => Err(e),
            }
        }
        Sampling::Uniform => Ok(vec![process(decode_uniform(video, n, &dec)?.0)?]),
        Sampling::Eval => {
            let item = Item { path: video.to_path_buf(), label: 0, duration_s: None };
            let views = eval_views(&item, model, &opts.eval_views)
                .map_err(|e| VideoError::Clip { path: video.to_path_buf(), message: without_path(&e, video) })?;
            Ok(views.into_iter().map(|c| HostTensor::new(vec![c.t, c.c, c.h, c.w], c.data)).collect())
        }
        Sampling::Multi => {
            let total = probe_stream(video, opts.stream)?.frames;
            let span = n * opts.frame_sampling_rate.max(1);
            let k = opts.clips.max(1);
            let max_start = total.saturating_sub(span);
            let mut clips = Vec::with_capacity(k);
            for c in 0..k {
                let start = if k == 1 { max_start / 2 } else { max_start * c / (k - 1) };
                let idx: Vec<usize> = clip_indices(start, n, opts.frame_sampling_rate.max(1))
                    .into_iter()
                    .map(|i| i.min(total.saturating_sub(1)))
                    .collect();
                clips.push(process(decode_indices(video, &idx, &dec)?)?);
            }
            Ok(clips)
        }
    }
}

/// Downloads an http(s) URL for `opts` (its progress callback and timeout);
/// errors read "URL: why".
pub fn fetch_url(url: &str, opts: &ClassifyOptions) -> Result<crate::net::TempVideo, String> {
    let progress = opts.on_download.clone();
    let each = move |done: u64, total: Option<u64>| {
        if let Some(p) = &progress {
            (p.0)(url, done, total)
        }
    };
    let o = crate::net::UrlOptions { timeout: opts.url_timeout, progress: Some(&each), cancel: None };
    crate::net::download(url, &o).map_err(|e| format!("{url}: {e}"))
}

/// [`prepare`] of a file, or of an http(s) URL (downloaded to a temporary
/// file, removed afterwards); errors name the input as given.
pub fn prepare_input(model: &VideoModel, video: &Path, opts: &ClassifyOptions) -> Result<Vec<HostTensor>, String> {
    let Some(url) = video.to_str().filter(|s| crate::net::is_url(s)) else {
        return prepare(model, video, opts).map_err(|e| e.to_string());
    };
    let temp = fetch_url(url, opts)?;
    prepare(model, temp.path(), opts).map_err(|e| e.to_string().replace(&temp.path().display().to_string(), url))
}

/// Softmax of one row of logits.
pub(crate) fn softmax(row: &[f32]) -> Vec<f32> {
    let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = row.iter().map(|v| (v - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// Top-k labels of averaged probabilities, highest first.
pub fn top_k(labels: &[String], probs: &[f32], k: usize) -> Vec<Prediction> {
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]));
    idx.into_iter()
        .take(k.min(labels.len()).max(1))
        .map(|i| Prediction { label: labels.get(i).cloned().unwrap_or_else(|| format!("LABEL_{i}")), score: probs[i] })
        .collect()
}

/// Per-video score sums while clips come back from the model.
struct Gather<'a> {
    videos: &'a [PathBuf],
    labels: &'a [String],
    top_k: usize,
    results: Vec<Option<VideoResult>>,
    sums: Vec<Vec<f32>>,
    remaining: Vec<usize>,
    totals: Vec<usize>,
}

impl Gather<'_> {
    fn finish(&mut self, vi: usize, r: VideoResult, on_result: &mut dyn FnMut(usize, &VideoResult)) {
        if self.results[vi].is_none() {
            on_result(vi, &r);
            self.results[vi] = Some(r);
        }
    }

    /// Runs the model on the pending clips and adds their probabilities to their videos.
    fn run(
        &mut self,
        model: &VideoModel,
        pending: &mut Vec<(usize, HostTensor)>,
        on_result: &mut dyn FnMut(usize, &VideoResult),
    ) {
        if pending.is_empty() {
            return;
        }
        let mut shape = vec![pending.len()];
        shape.extend_from_slice(&pending[0].1.shape);
        let data: Vec<f32> = pending.iter().flat_map(|(_, t)| t.data.iter().copied()).collect();
        let out = model.forward_host(HostTensor::new(shape, data));
        for (row, (vi, _)) in pending.drain(..).enumerate() {
            let logits = match &out {
                Ok(l) => l,
                Err(e) => {
                    let r = VideoResult::Err { video: self.videos[vi].clone(), error: e.to_string() };
                    self.finish(vi, r, on_result);
                    continue;
                }
            };
            let n = logits.shape[1];
            let p = softmax(&logits.data[row * n..(row + 1) * n]);
            let sum = &mut self.sums[vi];
            sum.resize(n, 0.0);
            for (s, v) in sum.iter_mut().zip(p) {
                *s += v;
            }
            self.remaining[vi] -= 1;
            if self.remaining[vi] == 0 {
                let clips = self.totals[vi].max(1) as f32;
                let probs: Vec<f32> = self.sums[vi].iter().map(|s| s / clips).collect();
                let r = VideoResult::Ok {
                    video: self.videos[vi].clone(),
                    predictions: top_k(self.labels, &probs, self.top_k),
                };
                self.finish(vi, r, on_result);
            }
        }
    }
}

/// Classifies videos; one result per video, in order. `on_result` is called as each finishes.
pub fn classify(
    model: &VideoModel,
    videos: &[PathBuf],
    opts: &ClassifyOptions,
    on_result: &mut dyn FnMut(usize, &VideoResult),
) -> Vec<VideoResult> {
    let (tx, rx) = sync_channel::<(usize, Result<Vec<HostTensor>, String>)>(opts.batch_size.max(1) * 2);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut gather = Gather {
        videos,
        labels: &model.labels,
        top_k: opts.top_k,
        results: vec![None; videos.len()],
        sums: vec![Vec::new(); videos.len()],
        remaining: vec![0; videos.len()],
        totals: vec![0; videos.len()],
    };
    std::thread::scope(|scope| {
        for w in 0..opts.workers.max(1).min(videos.len().max(1)) {
            let tx = tx.clone();
            let next = &next;
            let _ = std::thread::Builder::new().name(format!("vidi-classify-{w}")).spawn_scoped(scope, move || loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(v) = videos.get(i) else { break };
                if tx.send((i, prepare_input(model, v, opts))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        // Gather clips into batches; run the model when a batch is full or input ends.
        let mut pending: Vec<(usize, HostTensor)> = Vec::new();
        for (vi, prepared) in rx {
            match prepared {
                Ok(clips) => {
                    gather.remaining[vi] = clips.len();
                    gather.totals[vi] = clips.len();
                    for c in clips {
                        pending.push((vi, c));
                        if pending.len() >= opts.batch_size.max(1) {
                            gather.run(model, &mut pending, on_result);
                        }
                    }
                }
                Err(error) => gather.finish(vi, VideoResult::Err { video: videos[vi].clone(), error }, on_result),
            }
        }
        gather.run(model, &mut pending, on_result);
    });
    gather
        .results
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|| VideoResult::Err { video: videos[i].clone(), error: "not processed".into() }))
        .collect()
}

/// How `vidi eval` views a video: `clips` uniform clip windows of
/// `num_frames x sample_rate / fps` seconds, each resized to the model's size
/// (`crops` 1, the guide's validation transform) or cut into `crops` crops.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Views {
    /// Uniform clips per video.
    pub clips: usize,
    /// Spatial crops per clip: 1 = the guide's squash resize; more = short
    /// side to the model's size, then crops spread along the long side.
    pub crops: usize,
    /// Frame sampling rate sizing the clip window (the guide: 4).
    pub sample_rate: usize,
    /// Nominal fps sizing the clip window (the guide: 30).
    pub fps: f64,
}

impl Default for Views {
    fn default() -> Self {
        Views { clips: 1, crops: 1, sample_rate: 4, fps: 30.0 }
    }
}

/// The views `vidi eval` scores of one video, (T, C, H, W) each.
pub fn eval_views(item: &Item, model: &VideoModel, opts: &Views) -> Result<Vec<Clip>, String> {
    eval_views_in(item, None, model, opts)
}

/// [`eval_views`] of a video, or of a segment of it: a segment's clip windows
/// are drawn over its duration and placed on the video's clock ([`Segment::place`]).
pub fn eval_views_in(
    item: &Item,
    segment: Option<&Segment>,
    model: &VideoModel,
    opts: &Views,
) -> Result<Vec<Clip>, String> {
    let cfg = &model.config;
    let size = cfg.image_size;
    let p = &model.processor;
    let val = ValPreset {
        num_frames: cfg.num_frames,
        sample_rate: opts.sample_rate,
        fps: opts.fps,
        mean: p.image_mean,
        std: p.image_std,
        resize: (size, size),
        antialias: true,
    };
    let duration = match (segment, item.duration_s) {
        (Some(seg), _) => seg.duration_s(),
        (None, Some(d)) => d,
        (None, None) => probe(&item.path).map_err(|e| e.to_string())?.sampling_duration_s(),
    };
    let sampler = ClipSampler::ConstantClipsPerVideo {
        clip_duration: guide_clip_duration(cfg.num_frames, opts.sample_rate, opts.fps),
        clips_per_video: opts.clips.max(1),
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let bound = Preset::Val(val.clone()).frame_bound();
    let dec = DecodeOptions { threads: 1, bound: Some(bound), ..Default::default() };
    let mut views = Vec::new();
    for w in sampler.clips(duration, &mut rng) {
        let w = segment.map_or(w, |seg| seg.place(w));
        let frames = decode_time_range_subsampled(&item.path, w.start_secs, w.end_secs, cfg.num_frames, &dec)
            .map_err(|e| e.to_string())?;
        if frames.frames.is_empty() {
            return Err(format!("no frames between {:.2}s and {:.2}s", w.start_secs, w.end_secs));
        }
        let preset = Preset::Val(val.clone());
        if opts.crops <= 1 {
            views.push(preset.apply(&frames.frames, &mut rng).map_err(|e| e.to_string())?);
            continue;
        }
        let picked: Vec<_> =
            preset.frame_selection(frames.frames.len()).into_iter().map(|i| &frames.frames[i]).collect();
        let clip = Clip::from_frames_each(&picked, 1.0, |one| {
            one.rescale(1.0 / 255.0, 0.0).normalize(&val.mean, &val.std).short_side_scale(size)
        })
        .map_err(|e| e.to_string())?;
        let n = opts.crops;
        for i in 0..n {
            let (top, left) =
                if clip.w >= clip.h { (0, (clip.w - size) * i / (n - 1)) } else { ((clip.h - size) * i / (n - 1), 0) };
            views.push(clip.crop(top, left, size, size).map_err(|e| e.to_string())?);
        }
    }
    Ok(views)
}
