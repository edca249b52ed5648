//! Predictions along a whole video: a window of `num_frames x
//! frame_sampling_rate` frames every `stride` frames, each sampled as the
//! pipeline samples the start of a video; the segments where the top label
//! stays the same; and exports of both (CSV, JSON, WebVTT, SRT).
//!
//! The file is decoded once, front to back, on a thread of its own; only the
//! frames some window takes are converted and preprocessed, and a frame is
//! dropped as soon as no window still to come takes it, so memory does not
//! grow with the video's length. Windows are batched for the model.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::sync_channel;

use serde::Serialize;

use crate::infer::{softmax, top_k, Prediction};
use crate::model::weights::HostTensor;
use crate::model::VideoModel;
use crate::video::indices::{pipeline_indices, whole_video_indices};
use crate::video::{DecodeOptions, FrameSource, RgbFrame, VideoError};

/// Options of [`classify_timeline`].
#[derive(Clone, Debug)]
pub struct TimelineOptions {
    /// Labels kept per window.
    pub top_k: usize,
    /// The pipeline's `frame_sampling_rate`.
    pub frame_sampling_rate: usize,
    /// Frames from one window's start to the next's (default: the span, no overlap).
    pub stride: Option<usize>,
    /// Windows per model call.
    pub batch_size: usize,
    /// The video stream to read; the first video stream when `None`.
    pub stream: Option<usize>,
}

impl Default for TimelineOptions {
    fn default() -> Self {
        TimelineOptions { top_k: 5, frame_sampling_rate: 1, stride: None, batch_size: 4, stream: None }
    }
}

/// One window's predictions.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Window {
    /// Its first frame (0-based).
    pub start_frame: usize,
    /// One past its last frame.
    pub end_frame: usize,
    /// `start_frame / fps`.
    pub start_s: f64,
    /// `end_frame / fps`.
    pub end_s: f64,
    /// Top labels, highest first.
    pub predictions: Vec<Prediction>,
}

/// Consecutive windows with the same top label, merged.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Segment {
    /// The top label.
    pub label: String,
    /// The first window's start.
    pub start_s: f64,
    /// The last window's end.
    pub end_s: f64,
    /// The label's mean score over the windows.
    pub score: f32,
}

/// A video's timeline.
#[derive(Clone, Debug, Serialize)]
pub struct Timeline {
    /// Top labels of the window scores averaged: the whole video's answer.
    pub predictions: Vec<Prediction>,
    /// Frames decoded.
    pub frames: usize,
    /// The frame rate that turns frames into seconds.
    pub fps: f64,
    /// Frames per window (`num_frames x frame_sampling_rate`).
    pub window_frames: usize,
    /// Frames between window starts.
    pub stride: usize,
    /// Every window, in order.
    pub timeline: Vec<Window>,
    /// Runs of windows with the same top label.
    pub segments: Vec<Segment>,
}

/// Which frames the windows of a stream take, and the windows as they complete.
///
/// Window `k` starts at frame `k x stride` and takes `start + offsets`, the
/// pipeline's `linspace(0, span - 1, num_frames)` truncated; it is complete
/// when frame `start + span - 1` has arrived.
pub(crate) struct Windower {
    offsets: Vec<usize>,
    span: usize,
    stride: usize,
    /// Preprocessed frames some window still to come takes.
    kept: BTreeMap<usize, std::sync::Arc<Vec<f32>>>,
    /// The next window to complete.
    next: usize,
    /// Keep every frame of the first span (a video shorter than one window
    /// gets one window over what it has).
    keep_head: bool,
}

/// A window's frames, ready for the model: (num_frames, 3, H, W).
pub(crate) struct WindowClip {
    pub start: usize,
    pub end: usize,
    pub clip: HostTensor,
}

impl Windower {
    pub(crate) fn new(num_frames: usize, rate: usize, stride: usize, keep_head: bool) -> Windower {
        let offsets = pipeline_indices(num_frames, rate.max(1));
        let span = num_frames * rate.max(1);
        Windower { offsets, span, stride: stride.max(1), kept: BTreeMap::new(), next: 0, keep_head }
    }

    /// Whether frame `i` goes into a window still to come.
    pub(crate) fn wants(&self, i: usize) -> bool {
        if self.keep_head && self.next == 0 && i < self.span {
            return true;
        }
        self.offsets.iter().any(|&o| i >= o && (i - o) % self.stride == 0 && (i - o) / self.stride >= self.next)
    }

    /// Takes frame `i` (preprocessed, when wanted) and returns the window it completes, if any.
    pub(crate) fn push(&mut self, i: usize, frame: Option<Vec<f32>>, shape: [usize; 3]) -> Option<WindowClip> {
        if let Some(f) = frame {
            self.kept.insert(i, std::sync::Arc::new(f));
        }
        let start = self.next * self.stride;
        if i + 1 != start + self.span {
            return None;
        }
        let clip = self.assemble(start, &self.offsets.iter().map(|o| start + o).collect::<Vec<_>>(), shape)?;
        self.next += 1;
        let keep_from = self.next * self.stride;
        self.kept = self.kept.split_off(&keep_from);
        Some(WindowClip { start, end: start + self.span, clip })
    }

    /// At the end of a video of `total` frames: the one window of a video
    /// shorter than a window (its frames spread over what it has).
    pub(crate) fn finish(&mut self, total: usize, shape: [usize; 3]) -> Option<WindowClip> {
        if self.next > 0 || total == 0 || !self.keep_head {
            return None;
        }
        let idx = whole_video_indices(total, self.offsets.len());
        let clip = self.assemble(0, &idx, shape)?;
        self.next = 1;
        Some(WindowClip { start: 0, end: total, clip })
    }

    fn assemble(&self, _start: usize, idx: &[usize], [c, h, w]: [usize; 3]) -> Option<HostTensor> {
        let mut data = Vec::with_capacity(idx.len() * c * h * w);
        for i in idx {
            data.extend_from_slice(self.kept.get(i)?);
        }
        Some(HostTensor::new(vec![idx.len(), c, h, w], data))
    }
}

/// One frame through the model's image processor: its values and (C, H, W).
pub(crate) fn preprocess(
    model: &VideoModel,
    frame: &RgbFrame,
    name: &Path,
) -> Result<(Vec<f32>, [usize; 3]), VideoError> {
    let clip = model
        .processor
        .apply(std::slice::from_ref(frame))
        .map_err(|e| VideoError::Clip { path: name.to_path_buf(), message: e.to_string() })?;
    Ok((clip.data, [clip.c, clip.h, clip.w]))
}

/// What the decoding thread tells the model's.
enum Msg {
    Rate(f64),
    Window(WindowClip),
    Failed(VideoError),
}

/// Classifies the windows of one video; `on_window` sees each as it is scored.
pub fn classify_timeline(
    model: &VideoModel,
    video: &Path,
    opts: &TimelineOptions,
    on_window: &mut dyn FnMut(&Window),
) -> Result<Timeline, VideoError> {
    let n = model.config.num_frames;
    let rate = opts.frame_sampling_rate.max(1);
    let span = n * rate;
    let stride = opts.stride.unwrap_or(span).max(1);
    let dec = DecodeOptions { bound: model.processor.frame_bound(), stream: opts.stream, ..Default::default() };
    let batch = opts.batch_size.max(1);
    let (tx, rx) = sync_channel::<Msg>(batch * 2);
    let mut fps = 25.0;

    let mut windows: Vec<Window> = Vec::new();
    let mut sum: Vec<f32> = Vec::new();
    let mut frames = 0usize;
    let mut model_error: Option<VideoError> = None;
    std::thread::scope(|scope| {
        let decoder = scope.spawn(move || -> usize {
            // FFmpeg's contexts stay on this thread: it opens the file too.
            let mut source = match FrameSource::open(video, &dec) {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Msg::Failed(e));
                    return 0;
                }
            };
            if tx.send(Msg::Rate(source.frame_rate().unwrap_or(25.0))).is_err() {
                return 0;
            }
            let mut w = Windower::new(n, rate, stride, true);
            let mut shape = [3, 0, 0];
            let mut total = 0;
            loop {
                let frame = match source.next(|i| w.wants(i)) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send(Msg::Failed(e));
                        return total;
                    }
                };
                total = frame.index + 1;
                let data = match frame.rgb.map(|rgb| preprocess(model, &rgb, video)).transpose() {
                    Ok(d) => d.map(|(v, s)| {
                        shape = s;
                        v
                    }),
                    Err(e) => {
                        let _ = tx.send(Msg::Failed(e));
                        return total;
                    }
                };
                if let Some(win) = w.push(frame.index, data, shape) {
                    if tx.send(Msg::Window(win)).is_err() {
                        return total;
                    }
                }
            }
            if let Some(win) = w.finish(total, shape) {
                let _ = tx.send(Msg::Window(win));
            }
            total
        });
        let mut pending: Vec<WindowClip> = Vec::new();
        let mut run = |pending: &mut Vec<WindowClip>, windows: &mut Vec<Window>, fps: f64| -> Result<(), VideoError> {
            if pending.is_empty() {
                return Ok(());
            }
            let mut shape = vec![pending.len()];
            shape.extend_from_slice(&pending[0].clip.shape);
            let data: Vec<f32> = pending.iter().flat_map(|w| w.clip.data.iter().copied()).collect();
            let logits = model
                .forward_host(HostTensor::new(shape, data))
                .map_err(|e| VideoError::Clip { path: video.to_path_buf(), message: e.to_string() })?;
            let k = logits.shape[1];
            for (row, w) in pending.drain(..).enumerate() {
                let p = softmax(&logits.data[row * k..(row + 1) * k]);
                sum.resize(k, 0.0);
                for (s, v) in sum.iter_mut().zip(&p) {
                    *s += v;
                }
                let win = Window {
                    start_frame: w.start,
                    end_frame: w.end,
                    start_s: w.start as f64 / fps,
                    end_s: w.end as f64 / fps,
                    predictions: top_k(&model.labels, &p, opts.top_k),
                };
                on_window(&win);
                windows.push(win);
            }
            Ok(())
        };
        for item in rx.iter() {
            match item {
                Msg::Rate(r) => fps = r,
                Msg::Window(w) => {
                    pending.push(w);
                    if pending.len() >= batch {
                        if let Err(e) = run(&mut pending, &mut windows, fps) {
                            model_error = Some(e);
                            break;
                        }
                    }
                }
                Msg::Failed(e) => {
                    model_error = Some(e);
                    break;
                }
            }
        }
        if model_error.is_none() {
            if let Err(e) = run(&mut pending, &mut windows, fps) {
                model_error = Some(e);
            }
        }
        drop(rx);
        frames = decoder.join().unwrap_or(0);
    });
    if let Some(e) = model_error {
        return Err(e);
    }
    if windows.is_empty() {
        return Err(VideoError::NoFrames { path: video.to_path_buf() });
    }
    let count = windows.len() as f32;
    let mean: Vec<f32> = sum.iter().map(|s| s / count).collect();
    Ok(Timeline {
        predictions: top_k(&model.labels, &mean, opts.top_k),
        frames,
        fps,
        window_frames: span,
        stride,
        segments: segments(&windows),
        timeline: windows,
    })
}

/// Runs of consecutive windows with the same top label.
pub fn segments(windows: &[Window]) -> Vec<Segment> {
    let mut out: Vec<(Segment, usize)> = Vec::new();
    for w in windows {
        let Some(top) = w.predictions.first() else { continue };
        match out.last_mut() {
            Some((s, count)) if s.label == top.label => {
                s.end_s = w.end_s;
                s.score += top.score;
                *count += 1;
            }
            _ => out
                .push((Segment { label: top.label.clone(), start_s: w.start_s, end_s: w.end_s, score: top.score }, 1)),
        }
    }
    out.into_iter()
        .map(|(mut s, count)| {
            s.score /= count as f32;
            s
        })
        .collect()
}

/// Export formats of a timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// One row per window: video,start_frame,end_frame,start_s,end_s,label,score.
    Csv,
    /// The JSON `vidi classify --timeline --json` prints.
    Json,
    /// WebVTT subtitles: one cue per segment.
    Vtt,
    /// SubRip subtitles: one cue per segment.
    Srt,
}

impl ExportFormat {
    /// The format a file name's extension names.
    pub fn from_path(p: &Path) -> Option<ExportFormat> {
        match p.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(ExportFormat::Csv),
            "json" => Some(ExportFormat::Json),
            "vtt" => Some(ExportFormat::Vtt),
            "srt" => Some(ExportFormat::Srt),
            _ => None,
        }
    }

    /// True for the formats that hold one video each.
    pub fn per_video(self) -> bool {
        matches!(self, ExportFormat::Vtt | ExportFormat::Srt)
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// CSV of the windows of several videos (top label of each window).
pub fn to_csv(videos: &[(&str, &Timeline)]) -> String {
    let mut out = String::from("video,start_frame,end_frame,start_s,end_s,label,score\n");
    for (video, t) in videos {
        for w in &t.timeline {
            let (label, score) = w.predictions.first().map(|p| (p.label.as_str(), p.score)).unwrap_or(("", 0.0));
            out.push_str(&format!(
                "{},{},{},{:.3},{:.3},{},{:.4}\n",
                csv_field(video),
                w.start_frame,
                w.end_frame,
                w.start_s,
                w.end_s,
                csv_field(label),
                score
            ));
        }
    }
    out
}

fn clock(secs: f64, decimal: char) -> String {
    let ms = (secs.max(0.0) * 1000.0).round() as u64;
    format!("{:02}:{:02}:{:02}{decimal}{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

/// Subtitles with one cue per segment ("label (score %)"); a cue ends where the next begins.
pub fn to_subtitles(t: &Timeline, format: ExportFormat) -> String {
    let vtt = format == ExportFormat::Vtt;
    let mut out = if vtt { String::from("WEBVTT\n\n") } else { String::new() };
    let decimal = if vtt { '.' } else { ',' };
    for (i, s) in t.segments.iter().enumerate() {
        let end = t.segments.get(i + 1).map_or(s.end_s, |next| next.start_s.min(s.end_s));
        out.push_str(&format!(
            "{}\n{} --> {}\n{} ({:.0}%)\n\n",
            i + 1,
            clock(s.start_s, decimal),
            clock(end, decimal),
            s.label,
            s.score * 100.0
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_take_the_pipeline_frames_from_their_start() {
        // num_frames 4, rate 2: span 8, offsets linspace(0, 7, 4) -> 0, 2, 4, 7.
        let mut w = Windower::new(4, 2, 3, false);
        let mut done = Vec::new();
        for i in 0..20 {
            let data = w.wants(i).then(|| vec![i as f32]);
            if let Some(c) = w.push(i, data, [1, 1, 1]) {
                done.push((c.start, c.clip.data));
            }
        }
        // Windows start at 0, 3, 6, 9, 12 (12 + 8 <= 20); 15 + 8 > 20.
        let want: Vec<(usize, Vec<f32>)> =
            [0usize, 3, 6, 9, 12].iter().map(|&s| (s, [0, 2, 4, 7].iter().map(|o| (s + o) as f32).collect())).collect();
        assert_eq!(done, want);
        // Only frames of windows still to come are held.
        assert!(w.kept.keys().all(|&k| k >= 15), "{:?}", w.kept.keys().collect::<Vec<_>>());
    }

    #[test]
    fn a_short_video_gets_one_window_over_what_it_has() {
        let mut w = Windower::new(4, 2, 8, true);
        for i in 0..5 {
            let data = w.wants(i).then(|| vec![i as f32]);
            assert!(w.push(i, data, [1, 1, 1]).is_none());
        }
        let c = w.finish(5, [1, 1, 1]).expect("one window");
        // linspace(0, 4, 4) -> 0, 1.33, 2.67, 4 -> 0, 1, 2, 4.
        assert_eq!((c.start, c.end, c.clip.data), (0, 5, vec![0.0, 1.0, 2.0, 4.0]));
    }

    #[test]
    fn subtitle_clocks() {
        assert_eq!(clock(3725.5, ','), "01:02:05,500");
        assert_eq!(clock(0.0333, '.'), "00:00:00.033");
    }
}
