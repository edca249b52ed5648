//! Evaluation: accuracy, top-5, per-class precision/recall/F1 and the
//! confusion matrix, with one view per video (the guide) or the VideoMAE
//! paper's multi-view protocol (`clips` uniform clips x `crops` spatial crops,
//! softmax scores averaged).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;

use serde::Serialize;

use crate::dataset::loader::{Example, Item};
use crate::dataset::sampler::Segment;
use crate::dataset::transforms::Clip;
use crate::infer::{softmax, top_k, Prediction};
use crate::model::weights::HostTensor;
use crate::model::{ModelError, VideoModel};

/// How to evaluate.
#[derive(Clone, Debug, Serialize)]
pub struct EvalOptions {
    /// The views of each video: clips, crops and the clip window.
    #[serde(flatten)]
    pub views: crate::infer::Views,
    /// Views per forward pass.
    pub batch_size: usize,
    /// Decoding threads.
    pub workers: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions { views: Default::default(), batch_size: 8, workers: crate::dataset::loader::default_workers() }
    }
}

/// One video's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct VideoOutcome {
    /// The file.
    pub video: PathBuf,
    /// True label.
    pub label: String,
    /// Predicted label.
    pub predicted: String,
    /// The three best labels with scores.
    pub top3: Vec<Prediction>,
    /// The time range of the video scored, when the sample is a segment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<Segment>,
}

/// Metrics of one class.
#[derive(Clone, Debug, Serialize)]
pub struct ClassMetrics {
    /// The label.
    pub label: String,
    /// TP / (TP + FP) (0 when nothing was predicted as this class).
    pub precision: f64,
    /// TP / (TP + FN).
    pub recall: f64,
    /// Harmonic mean of the two.
    pub f1: f64,
    /// Videos of this class.
    pub support: usize,
}

/// The evaluation report.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// Top-1 accuracy over the evaluated videos.
    pub accuracy: f64,
    /// Top-5 accuracy (top-k with k = min(5, labels)).
    pub top5_accuracy: f64,
    /// Mean cross-entropy of the averaged scores.
    pub loss: f64,
    /// Videos evaluated.
    pub videos: usize,
    /// Views per video (clips x crops).
    pub views: [usize; 2],
    /// Labels, in matrix order.
    pub labels: Vec<String>,
    /// Per-class precision, recall, F1.
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// Every video's outcome (misclassified ones have `label != predicted`).
    pub outcomes: Vec<VideoOutcome>,
    /// Videos that could not be read, with the reason (not counted).
    pub failed: Vec<(PathBuf, String)>,
}

impl EvalReport {
    /// The misclassified videos.
    pub fn misclassified(&self) -> impl Iterator<Item = &VideoOutcome> {
        self.outcomes.iter().filter(|o| o.label != o.predicted)
    }

    /// The confusion matrix as CSV (rows: true label, columns: predicted).
    pub fn confusion_csv(&self) -> String {
        let esc = |s: &str| {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let mut out = String::from("true\\predicted");
        for l in &self.labels {
            out.push(',');
            out.push_str(&esc(l));
        }
        out.push('\n');
        for (i, row) in self.confusion.iter().enumerate() {
            out.push_str(&esc(&self.labels[i]));
            for c in row {
                out.push_str(&format!(",{c}"));
            }
            out.push('\n');
        }
        out
    }
}

/// The parts of a written `report.json` that other tools read back (the model card).
#[derive(Clone, Debug, serde::Deserialize)]
pub struct EvalReportFile {
    /// Top-1 accuracy.
    pub accuracy: f64,
    /// Labels, in matrix order.
    pub labels: Vec<String>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
}

/// Something stopped the evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// No video could be evaluated.
    #[error("no video could be evaluated ({0} failed)")]
    NothingEvaluated(usize),
    /// Stopped by the user.
    #[error("stopped")]
    Cancelled,
}

/// The readable videos (and segments) of `split` (`all`: every one) in `index`, labelled by their class's
/// position in `labels` (a model's). A class the model does not know is an error.
pub fn split_items(
    index: &crate::dataset::DatasetIndex,
    split: &str,
    labels: &[String],
) -> Result<Vec<Example>, String> {
    let mut items = Vec::new();
    // `all`: every sample, the whole of a dataset without splits.
    for s in index.samples.iter().filter(|s| split == "all" || s.split.as_deref() == Some(split)) {
        let Some(label) = labels.iter().position(|l| *l == s.class) else {
            let what = if index.format == "folder" { "class folder" } else { "class" };
            return Err(format!("{what} '{}' is not one of the model's labels ({})", s.class, labels.join(", ")));
        };
        if s.info.is_some() {
            let ex = Example::from(s);
            items.push(Example { item: Item { label, ..ex.item }, ..ex });
        }
    }
    if items.is_empty() {
        return Err(format!("{}: no readable videos in the '{split}' split", index.root.display()));
    }
    Ok(items)
}

/// The views of one video, (T, C, H, W) each (see [`crate::infer::eval_views`]).
/// A segment's views are drawn the same way over its range alone.
pub fn video_views(example: &Example, model: &VideoModel, opts: &EvalOptions) -> Result<Vec<Clip>, String> {
    crate::infer::eval_views_in(&example.item, example.segment.as_ref(), model, &opts.views)
}

/// Evaluates `model` on `items` (whole videos or segments; labels index
/// `model.labels`). `progress(done, total)` is called after each video;
/// `cancel` stops between videos.
pub fn evaluate<T: Clone + Into<Example>>(
    model: &VideoModel,
    items: &[T],
    opts: &EvalOptions,
    progress: &mut dyn FnMut(usize, usize),
    cancel: &AtomicBool,
) -> Result<EvalReport, EvalError> {
    let examples: Vec<Example> = items.iter().cloned().map(Into::into).collect();
    let items = &examples[..];
    let k = model.labels.len();
    let mut confusion = vec![vec![0usize; k]; k];
    let mut outcomes = Vec::new();
    let mut failed = Vec::new();
    let (mut top1, mut top5, mut loss) = (0usize, 0usize, 0f64);
    let next = AtomicUsize::new(0);
    let (tx, rx) = sync_channel::<(usize, Result<Vec<Clip>, String>)>(opts.workers.max(1) * 2);
    let stop = AtomicBool::new(false);
    let result: Result<(), EvalError> = std::thread::scope(|s| {
        for w in 0..opts.workers.max(1) {
            let (tx, next, stop) = (tx.clone(), &next, &stop);
            let _ = std::thread::Builder::new().name(format!("vidi-eval-{w}")).spawn_scoped(s, move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= items.len() || stop.load(Ordering::SeqCst) {
                    break;
                }
                if tx.send((i, video_views(&items[i], model, opts))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut pending = std::collections::BTreeMap::new();
        let mut done = 0;
        // Views of several videos go through the model together.
        let mut queue: Vec<(usize, Vec<Clip>)> = Vec::new();
        let mut flush = |queue: &mut Vec<(usize, Vec<Clip>)>| -> Result<(), EvalError> {
            if queue.is_empty() {
                return Ok(());
            }
            let clips: Vec<&Clip> = queue.iter().flat_map(|(_, v)| v.iter()).collect();
            let (t, c, h, w) = (clips[0].t, clips[0].c, clips[0].h, clips[0].w);
            let mut data = Vec::with_capacity(clips.len() * t * c * h * w);
            for cl in &clips {
                data.extend_from_slice(&cl.data);
            }
            let logits = model.forward_host(HostTensor::new(vec![clips.len(), t, c, h, w], data))?;
            let mut row = 0;
            for (i, views) in queue.drain(..) {
                let mut avg = vec![0f64; k];
                for _ in 0..views.len() {
                    let p = softmax(&logits.data[row * k..(row + 1) * k]);
                    for (a, v) in avg.iter_mut().zip(p) {
                        *a += v as f64 / views.len() as f64;
                    }
                    row += 1;
                }
                let probs: Vec<f32> = avg.iter().map(|v| *v as f32).collect();
                let truth = items[i].item.label;
                let ranked = top_k(&model.labels, &probs, k);
                let pred = (0..k).fold(0, |b, j| if avg[j] > avg[b] { j } else { b });
                let rank = (0..k).filter(|&j| avg[j] > avg[truth]).count();
                confusion[truth][pred] += 1;
                top1 += usize::from(pred == truth);
                top5 += usize::from(rank < 5);
                loss -= avg[truth].max(1e-12).ln();
                outcomes.push(VideoOutcome {
                    video: items[i].item.path.clone(),
                    label: model.labels[truth].clone(),
                    predicted: model.labels[pred].clone(),
                    top3: ranked.into_iter().take(3).collect(),
                    segment: items[i].segment,
                });
            }
            Ok(())
        };
        let per_video = (opts.views.clips.max(1) * opts.views.crops.max(1)).max(1);
        let videos_per_batch = (opts.batch_size.max(1) / per_video).max(1);
        let mut next_out = 0;
        while next_out < items.len() {
            if cancel.load(Ordering::SeqCst) {
                stop.store(true, Ordering::SeqCst);
                return Err(EvalError::Cancelled);
            }
            while !pending.contains_key(&next_out) {
                match rx.recv() {
                    Ok((i, r)) => {
                        pending.insert(i, r);
                    }
                    Err(_) => break,
                }
            }
            let Some(r) = pending.remove(&next_out) else { break };
            match r {
                Ok(views) if !views.is_empty() => queue.push((next_out, views)),
                Ok(_) => failed.push((items[next_out].item.path.clone(), "no views".to_string())),
                Err(e) => failed.push((items[next_out].item.path.clone(), e)),
            }
            next_out += 1;
            if queue.len() >= videos_per_batch {
                if let Err(e) = flush(&mut queue) {
                    stop.store(true, Ordering::SeqCst);
                    return Err(e);
                }
            }
            done += 1;
            progress(done, items.len());
        }
        let r = flush(&mut queue);
        stop.store(true, Ordering::SeqCst);
        r
    });
    result?;
    let n = outcomes.len();
    if n == 0 {
        return Err(EvalError::NothingEvaluated(failed.len()));
    }
    let per_class = (0..k)
        .map(|c| {
            let tp = confusion[c][c] as f64;
            let support: usize = confusion[c].iter().sum();
            let predicted: usize = confusion.iter().map(|r| r[c]).sum();
            let precision = if predicted > 0 { tp / predicted as f64 } else { 0.0 };
            let recall = if support > 0 { tp / support as f64 } else { 0.0 };
            let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
            ClassMetrics { label: model.labels[c].clone(), precision, recall, f1, support }
        })
        .collect();
    Ok(EvalReport {
        accuracy: top1 as f64 / n as f64,
        top5_accuracy: top5 as f64 / n as f64,
        loss: loss / n as f64,
        videos: n,
        views: [opts.views.clips.max(1), opts.views.crops.max(1)],
        labels: model.labels.clone(),
        per_class,
        confusion,
        outcomes,
        failed,
    })
}

/// Writes `report.json`, `confusion.csv` and `confusion.png` into `dir`.
pub fn write_report(report: &EvalReport, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    crate::util::write_atomic(&dir.join("report.json"), json.as_bytes())?;
    crate::util::write_atomic(&dir.join("confusion.csv"), report.confusion_csv().as_bytes())?;
    let png = crate::heatmap::confusion_png(&report.labels, &report.confusion).map_err(std::io::Error::other)?;
    crate::util::write_atomic(&dir.join("confusion.png"), &png)
}
