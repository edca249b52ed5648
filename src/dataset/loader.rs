//! Batches of clips, decoded and transformed on worker threads with a
//! bounded prefetch queue. The order of examples and every random choice
//! depend only on the seed and epoch, never on thread timing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::presets::Preset;
use super::sampler::{ClipSampler, ClipWindow, Segment};
use super::transforms::Clip;
use crate::video::{decode_time_range_subsampled, probe, DecodeOptions};

/// One item to load: a video and its label.
#[derive(Clone, Debug)]
pub struct Item {
    /// The file.
    pub path: PathBuf,
    /// Its label index.
    pub label: usize,
    /// Duration used by the clip sampler, when already known (probed).
    pub duration_s: Option<f64>,
}

impl From<&super::Sample> for Item {
    fn from(s: &super::Sample) -> Item {
        let duration_s = match &s.segment {
            Some(seg) => Some(seg.duration_s()),
            None => s.info.as_ref().map(|i| i.sampling_duration_s()),
        };
        Item { path: s.path.clone(), label: s.label, duration_s }
    }
}

/// One example to load: an [`Item`] and, when it is a segment of a longer
/// video, its time range (then `item.duration_s` is the segment's length).
#[derive(Clone, Debug)]
pub struct Example {
    /// The video, its label and the duration the clip sampler works with.
    pub item: Item,
    /// The range of the video it is, if only part of it.
    pub segment: Option<Segment>,
}

impl From<Item> for Example {
    fn from(item: Item) -> Example {
        Example { item, segment: None }
    }
}

impl From<&super::Sample> for Example {
    fn from(s: &super::Sample) -> Example {
        Example { item: Item::from(s), segment: s.segment }
    }
}

impl Example {
    /// The clip windows to decode: the sampler's over the video, or over the
    /// segment and placed on the video's clock (see [`Segment`]).
    pub fn windows(&self, sampler: &ClipSampler, duration: f64, rng: &mut impl rand::Rng) -> Vec<ClipWindow> {
        let clips = sampler.clips(duration, rng);
        match &self.segment {
            None => clips,
            Some(seg) => clips.into_iter().map(|w| seg.place(w)).collect(),
        }
    }
}

/// Loader settings.
#[derive(Clone, Debug)]
pub struct LoaderOptions {
    /// Examples per batch.
    pub batch_size: usize,
    /// Worker threads decoding and transforming.
    pub workers: usize,
    /// Batches prepared ahead of the consumer.
    pub prefetch: usize,
    /// Shuffle the items (per epoch, from the seed).
    pub shuffle: bool,
    /// The seed.
    pub seed: u64,
    /// The epoch (changes the shuffle and the random clips).
    pub epoch: u64,
    /// Position in the (shuffled) order to start from: resuming mid-epoch
    /// skips what was already seen and keeps every later random choice.
    pub start: usize,
}

/// Decode workers by default: one per core but one (left to the model and
/// the consumer), at least one, so a fast device is not left waiting.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_sub(1).max(1)
}

impl Default for LoaderOptions {
    fn default() -> Self {
        LoaderOptions {
            batch_size: 8,
            workers: default_workers(),
            prefetch: 2,
            shuffle: false,
            seed: 0,
            epoch: 0,
            start: 0,
        }
    }
}

/// A batch: `pixel_values` (B, T, C, H, W) f32 and labels.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Shape [B, T, C, H, W].
    pub shape: [usize; 5],
    /// `B*T*C*H*W` values.
    pub pixel_values: Vec<f32>,
    /// Label per example.
    pub labels: Vec<usize>,
    /// Source video per example.
    pub paths: Vec<PathBuf>,
    /// Videos that failed to load since the previous batch, with the reason (they are skipped).
    pub skipped: Vec<(PathBuf, String)>,
}

impl Batch {
    /// Stacks clips of equal shape into a batch.
    pub fn stack(examples: Vec<(Clip, usize, PathBuf)>, skipped: Vec<(PathBuf, String)>) -> Batch {
        let (t, c, h, w) = examples.first().map_or((0, 0, 0, 0), |e| (e.0.t, e.0.c, e.0.h, e.0.w));
        let mut pixel_values = Vec::with_capacity(examples.len() * t * c * h * w);
        let mut labels = Vec::new();
        let mut paths = Vec::new();
        for (clip, label, path) in examples {
            pixel_values.extend_from_slice(&clip.data);
            labels.push(label);
            paths.push(path);
        }
        Batch { shape: [labels.len(), t, c, h, w], pixel_values, labels, paths, skipped }
    }
}

type JobResult = Result<Vec<Clip>, String>;

/// An epoch of class-balanced examples: as many as `items` holds, the same
/// number from each class (the first `n mod classes` classes, in a seeded
/// order, get one more). Within a class the examples are dealt from a seeded
/// shuffle, over again as often as needed, so a small class repeats and a
/// large one is subsampled without repeats. Depends only on `seed` and
/// `epoch` (so a resumed run draws the same epoch).
pub fn balanced(items: &[Example], seed: u64, epoch: u64) -> Vec<Example> {
    let mut by_class: BTreeMap<usize, Vec<&Example>> = BTreeMap::new();
    for e in items {
        by_class.entry(e.item.label).or_default().push(e);
    }
    if by_class.len() < 2 {
        return items.to_vec();
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(item_seed(seed ^ 0xBA1A_4CED, epoch, u64::MAX - 1));
    let mut classes: Vec<usize> = by_class.keys().copied().collect();
    classes.shuffle(&mut rng);
    let (k, n) = (classes.len(), items.len());
    let mut out = Vec::with_capacity(n);
    for (ci, c) in classes.iter().enumerate() {
        let want = n / k + usize::from(ci < n % k);
        let pool = &by_class[c];
        let mut order: Vec<&Example> = Vec::new();
        while order.len() < want {
            let mut round = pool.clone();
            round.shuffle(&mut rng);
            order.extend(round);
        }
        out.extend(order.into_iter().take(want).cloned());
    }
    out
}

/// Iterator over batches; dropping it stops the workers.
pub struct Loader {
    rx: Receiver<(usize, JobResult)>,
    items: Arc<Vec<Example>>,
    pending: BTreeMap<usize, JobResult>,
    next_job: usize,
    ready: Vec<(Clip, usize, PathBuf)>,
    skipped: Vec<(PathBuf, String)>,
    batch_size: usize,
    gate: Arc<(Mutex<usize>, Condvar)>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

/// Mixes seed, epoch and position into one per-item seed.
fn item_seed(seed: u64, epoch: u64, pos: u64) -> u64 {
    let mut x = seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ pos.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 29)
}

/// Loads one example: its clip windows, decoded and transformed.
pub fn load_item(example: &Example, preset: &Preset, seed: u64) -> JobResult {
    let item = &example.item;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let duration = match (item.duration_s, &example.segment) {
        (Some(d), _) => d,
        (None, Some(seg)) => seg.duration_s(),
        (None, None) => probe(&item.path).map_err(|e| e.to_string())?.sampling_duration_s(),
    };
    let opts = DecodeOptions { threads: 1, bound: Some(preset.frame_bound()), ..Default::default() };
    let mut clips = Vec::new();
    for window in example.windows(&preset.clip_sampler(), duration, &mut rng) {
        let frames =
            decode_time_range_subsampled(&item.path, window.start_secs, window.end_secs, preset.num_frames(), &opts)
                .map_err(|e| e.to_string())?;
        if frames.frames.is_empty() {
            return Err(format!(
                "{}: no frames between {:.2}s and {:.2}s",
                item.path.display(),
                window.start_secs,
                window.end_secs
            ));
        }
        clips.push(preset.apply(&frames.frames, &mut rng).map_err(|e| format!("{}: {e}", item.path.display()))?);
    }
    Ok(clips)
}

impl Loader {
    /// Starts loading `items` (whole videos or segments) with `preset`.
    pub fn new(items: Vec<impl Into<Example>>, preset: Preset, opts: &LoaderOptions) -> Loader {
        let mut items: Vec<Example> = items.into_iter().map(Into::into).collect();
        if opts.shuffle {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(item_seed(opts.seed, opts.epoch, u64::MAX));
            items.shuffle(&mut rng);
        }
        let items = Arc::new(items);
        let window = opts.prefetch.max(1) * opts.batch_size.max(1) + opts.workers.max(1);
        let (tx, rx) = sync_channel(window);
        let next = Arc::new(AtomicUsize::new(opts.start));
        let gate = Arc::new((Mutex::new(opts.start), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let preset = Arc::new(preset);
        let workers = (0..opts.workers.max(1))
            .filter_map(|w| {
                let (tx, items, next, gate, stop, preset) =
                    (tx.clone(), items.clone(), next.clone(), gate.clone(), stop.clone(), preset.clone());
                let (seed, epoch) = (opts.seed, opts.epoch);
                std::thread::Builder::new()
                    .name(format!("vidi-loader-{w}"))
                    .spawn(move || loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(item) = items.get(i) else { break };
                        {
                            // Stay within `window` items of what the consumer has taken.
                            let (lock, cv) = &*gate;
                            let mut taken = lock.lock().unwrap_or_else(|p| p.into_inner());
                            while i >= *taken + window && !stop.load(Ordering::SeqCst) {
                                taken = cv.wait(taken).unwrap_or_else(|p| p.into_inner());
                            }
                        }
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let r = load_item(item, &preset, item_seed(seed, epoch, i as u64));
                        if tx.send((i, r)).is_err() {
                            break;
                        }
                    })
                    .ok()
            })
            .collect();
        Loader {
            rx,
            items,
            pending: BTreeMap::new(),
            next_job: opts.start,
            ready: Vec::new(),
            skipped: Vec::new(),
            batch_size: opts.batch_size.max(1),
            gate,
            stop,
            workers,
        }
    }

    /// How many items (videos) this loader goes through.
    pub fn len_items(&self) -> usize {
        self.items.len()
    }

    fn take_next_job(&mut self) -> Option<JobResult> {
        if self.next_job >= self.items.len() {
            return None;
        }
        while !self.pending.contains_key(&self.next_job) {
            match self.rx.recv() {
                Ok((i, r)) => {
                    self.pending.insert(i, r);
                }
                Err(_) => {
                    // Every worker is gone (none could start): nothing more will come.
                    self.next_job = self.items.len();
                    return None;
                }
            }
        }
        let r = self.pending.remove(&self.next_job);
        self.next_job += 1;
        let (lock, cv) = &*self.gate;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = self.next_job;
        cv.notify_all();
        r
    }
}

impl Iterator for Loader {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        while self.ready.len() < self.batch_size {
            let idx = self.next_job;
            match self.take_next_job() {
                None => break,
                Some(Ok(clips)) => {
                    let item = &self.items[idx].item;
                    for c in clips {
                        self.ready.push((c, item.label, item.path.clone()));
                    }
                }
                Some(Err(reason)) => self.skipped.push((self.items[idx].item.path.clone(), reason)),
            }
        }
        if self.ready.is_empty() && self.skipped.is_empty() {
            return None;
        }
        let n = self.ready.len().min(self.batch_size);
        let examples: Vec<_> = self.ready.drain(..n).collect();
        Some(Batch::stack(examples, std::mem::take(&mut self.skipped)))
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.gate.1.notify_all();
        // Unblock workers waiting to send, then join them.
        while self.rx.try_recv().is_ok() {}
        for w in self.workers.drain(..) {
            while !w.is_finished() {
                while self.rx.try_recv().is_ok() {}
                std::thread::yield_now();
            }
            let _ = w.join();
        }
    }
}
