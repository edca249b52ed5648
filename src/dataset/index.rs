//! Folder indexing: which videos, which labels, what is wrong with the folder.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::annotations::Problem;
use super::sampler::Segment;
use super::DatasetError;
use crate::video::{probe, VideoInfo};

/// File endings taken as videos (case-insensitive).
pub const VIDEO_EXTENSIONS: &[&str] =
    &["avi", "mp4", "m4v", "mkv", "webm", "mov", "mpg", "mpeg", "wmv", "flv", "ogv", "3gp", "ts", "mts"];

/// The three splits of the reference layout.
pub const SPLITS: [&str; 3] = ["train", "val", "test"];

/// Is this a video file, by its ending?
pub fn is_video_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.iter().any(|v| v.eq_ignore_ascii_case(e)))
}

/// How the folder is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// `<root>/{train,val,test}/<Class>/*`.
    Split,
    /// `<root>/<Class>/*`.
    Flat,
}

/// One video of the dataset.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    /// The file.
    pub path: PathBuf,
    /// Class folder name.
    pub class: String,
    /// Index of `class` in the sorted label list.
    pub label: usize,
    /// `train`, `val` or `test`; `None` in a flat folder.
    pub split: Option<String>,
    /// UCF101-style group (`<Class>_gNN`), when the name carries one.
    pub group: Option<String>,
    /// What probing found (frames, fps, duration), when the folder was checked.
    #[serde(skip)]
    pub info: Option<VideoInfo>,
    /// The time range of the video this sample is, when an annotation gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<Segment>,
}

/// A file that looked like a video but could not be read.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Unreadable {
    /// The file.
    pub path: PathBuf,
    /// Why, in one line.
    pub reason: String,
    /// `train`, `val` or `test`; `None` in a flat folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
}

/// A UCF101 group found in more than one split.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LeakingGroup {
    /// `<Class>_gNN`.
    pub group: String,
    /// The splits it appears in.
    pub splits: Vec<String>,
}

/// The whole indexed folder and what is wrong with it.
#[derive(Clone, Debug, Serialize)]
pub struct DatasetIndex {
    /// The folder.
    pub root: PathBuf,
    /// Its layout.
    pub layout: Layout,
    /// Labels: the class folder names that hold videos, sorted (Python's `sorted`).
    pub classes: Vec<String>,
    /// Readable videos.
    #[serde(skip)]
    pub samples: Vec<Sample>,
    /// split -> class -> number of readable videos (`all` for a flat folder).
    pub counts: BTreeMap<String, BTreeMap<String, usize>>,
    /// Files skipped because they could not be read.
    pub unreadable: Vec<Unreadable>,
    /// Class folders with no readable video (in any split).
    pub empty_classes: Vec<String>,
    /// Groups present in more than one split (data leakage).
    pub leaking_groups: Vec<LeakingGroup>,
    /// Files in class folders that are not videos by their ending (ignored).
    pub ignored_files: usize,
    /// Where the samples came from: `folder`, or the list formats read
    /// (`ucf101`, `hmdb51`, `mmaction2`, `csv`, `kinetics`, `ssv2`, joined by `+`).
    pub format: String,
    /// How many samples are segments (a time range of a longer video).
    pub segments: usize,
    /// class -> samples over all splits.
    pub class_counts: BTreeMap<String, usize>,
    /// Warnings, such as class imbalance (the largest class over 3x the smallest).
    pub warnings: Vec<String>,
    /// Problems in list and classes files that are no one video's (duplicate
    /// class names, malformed lines); each was skipped.
    pub problems: Vec<Problem>,
}

/// A class over this many times the smallest one is reported as imbalance.
pub const IMBALANCE_RATIO: f64 = 3.0;

impl DatasetIndex {
    /// `label2id`.
    pub fn label_of(&self, class: &str) -> Option<usize> {
        self.classes.iter().position(|c| c == class)
    }

    /// Fills in `segments`, `class_counts` and the imbalance `warnings` from the samples.
    pub fn finish_report(&mut self) {
        self.segments = self.samples.iter().filter(|s| s.segment.is_some()).count();
        self.class_counts = self.classes.iter().map(|c| (c.clone(), 0)).collect();
        for s in &self.samples {
            *self.class_counts.entry(s.class.clone()).or_default() += 1;
        }
        for (split, per) in &self.counts {
            if let Some(w) = imbalance_warning(split, per) {
                self.warnings.push(w);
            }
        }
    }
}

/// The imbalance warning of one split's class counts, when the largest class
/// holds more than [`IMBALANCE_RATIO`] times the samples of the smallest
/// (classes with none are reported as empty instead).
pub fn imbalance_warning(split: &str, per: &BTreeMap<String, usize>) -> Option<String> {
    let present = per.iter().filter(|(_, n)| **n > 0);
    let (big, nb) = present.clone().fold(None, |b: Option<(&String, usize)>, (c, n)| match b {
        Some((_, bn)) if bn >= *n => b,
        _ => Some((c, *n)),
    })?;
    let (small, ns) = present.fold(None, |b: Option<(&String, usize)>, (c, n)| match b {
        Some((_, bn)) if bn <= *n => b,
        _ => Some((c, *n)),
    })?;
    (nb as f64 > IMBALANCE_RATIO * ns as f64).then(|| {
        format!(
            "class imbalance in {split}: '{big}' has {nb} samples, '{small}' has {ns} ({:.1}x; more than {IMBALANCE_RATIO}x); consider vidi train --balance",
            nb as f64 / ns as f64
        )
    })
}

impl DatasetIndex {
    /// The readable samples of one split (`None` = a flat folder's samples).
    pub fn split(&self, split: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.split.as_deref() == Some(split)).collect()
    }

    /// The unreadable files of one split.
    pub fn unreadable_in<'a>(&'a self, split: &'a str) -> impl Iterator<Item = &'a Unreadable> + 'a {
        self.unreadable.iter().filter(move |u| u.split.as_deref() == Some(split))
    }
}

/// The UCF101 group of a file name `v_<Class>_g<NN>_c<MM>.<ext>`: `<Class>_g<NN>`.
pub fn ucf101_group(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    // Find the last "_g<digits>_c<digits>" and keep what precedes "_c".
    let gpos = stem.rfind("_g")?;
    let rest = &stem[gpos + 2..];
    let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || !rest[digits..].starts_with("_c") {
        return None;
    }
    let class_part = stem[..gpos].strip_prefix("v_").unwrap_or(&stem[..gpos]);
    Some(format!("{class_part}_g{}", &rest[..digits]))
}

/// Options for [`index_folder`].
#[derive(Clone, Debug)]
pub struct IndexOptions {
    /// Probe every video (decode it to count frames); unreadable ones are
    /// listed and skipped. Without it, every video-looking file is taken.
    pub check_readable: bool,
    /// Threads for probing.
    pub threads: usize,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions { check_readable: true, threads: std::thread::available_parallelism().map_or(2, |n| n.get()) }
    }
}

/// A folder's name as a label. A name that is not UTF-8 keeps its valid
/// parts (`U+FFFD` for the rest) rather than becoming the empty label that
/// every such folder would share.
fn folder_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn sorted_dir(path: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let rd = std::fs::read_dir(path).map_err(|source| DatasetError::Io { path: path.into(), source })?;
    let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    v.sort();
    Ok(v)
}

/// Indexes a dataset folder in either layout and checks it.
pub fn index_folder(root: &Path, opts: &IndexOptions) -> Result<DatasetIndex, DatasetError> {
    index_folder_with_progress(root, opts, &mut |_, _| {})
}

/// [`index_folder`], calling `progress(done, total)` as videos are checked.
pub fn index_folder_with_progress(
    root: &Path,
    opts: &IndexOptions,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<DatasetIndex, DatasetError> {
    if !root.exists() {
        return Err(DatasetError::NotFound { path: root.into() });
    }
    if !root.is_dir() {
        return Err(DatasetError::NotADirectory { path: root.into() });
    }
    let top = sorted_dir(root)?;
    let split_dirs: Vec<&PathBuf> = top
        .iter()
        .filter(|p| p.is_dir() && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| SPLITS.contains(&n)))
        .collect();
    let layout = if split_dirs.is_empty() { Layout::Flat } else { Layout::Split };

    // (split, class dir) pairs.
    let mut class_dirs: Vec<(Option<String>, PathBuf)> = Vec::new();
    match layout {
        Layout::Split => {
            for sd in &split_dirs {
                let split = sd.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
                for c in sorted_dir(sd)? {
                    if c.is_dir() {
                        class_dirs.push((Some(split.clone()), c));
                    }
                }
            }
        }
        Layout::Flat => {
            for c in top.iter().filter(|p| p.is_dir()) {
                if folder_name(c).starts_with('.') {
                    continue;
                }
                class_dirs.push((None, c.clone()));
            }
        }
    }

    let mut candidates: Vec<(Option<String>, String, PathBuf)> = Vec::new();
    let mut all_classes = BTreeSet::new();
    let mut ignored_files = 0;
    // FIFOs, devices, folders and broken links named like videos are reported, never
    // opened (reading a FIFO could block forever).
    let mut special = Vec::new();
    for (split, dir) in &class_dirs {
        let class = folder_name(dir);
        all_classes.insert(class.clone());
        for f in sorted_dir(dir)? {
            if f.is_file() && is_video_file(&f) {
                candidates.push((split.clone(), class.clone(), f));
            } else if f.is_file() {
                ignored_files += 1;
            } else if is_video_file(&f) {
                // Named like a video but not a file: listed, never opened.
                if let Some(reason) = crate::video::not_a_file_reason(&f) {
                    special.push(Unreadable { path: f, reason, split: split.clone() });
                }
            }
        }
    }
    if candidates.is_empty() {
        return Err(DatasetError::Empty { path: root.into() });
    }

    let infos: Vec<Result<Option<VideoInfo>, String>> = if opts.check_readable {
        probe_all(&candidates.iter().map(|c| c.2.clone()).collect::<Vec<_>>(), opts.threads.max(1), progress)
    } else {
        candidates.iter().map(|_| Ok(None)).collect()
    };

    let mut unreadable = special;
    let mut kept = Vec::new();
    for ((split, class, path), info) in candidates.into_iter().zip(infos) {
        match info {
            Ok(info) => kept.push((split, class, path, info)),
            Err(reason) => unreadable.push(Unreadable { path, reason, split }),
        }
    }
    unreadable.sort_by(|a, b| a.path.cmp(&b.path));
    let classes: Vec<String> = kept.iter().map(|k| k.1.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let empty_classes = all_classes.iter().filter(|c| !classes.contains(c)).cloned().collect();

    let mut counts: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut group_splits: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut samples = Vec::with_capacity(kept.len());
    for (split, class, path, info) in kept {
        let key = split.clone().unwrap_or_else(|| "all".into());
        *counts.entry(key.clone()).or_default().entry(class.clone()).or_default() += 1;
        let group = ucf101_group(&path);
        if let (Some(g), Some(s)) = (&group, &split) {
            group_splits.entry(g.clone()).or_default().insert(s.clone());
        }
        let label = classes.binary_search(&class).unwrap_or(0);
        samples.push(Sample { path, class, label, split, group, info, segment: None });
    }
    let leaking_groups = finish_tables(&mut counts, &classes, group_splits);

    let mut index = DatasetIndex {
        root: root.into(),
        layout,
        classes,
        samples,
        counts,
        unreadable,
        empty_classes,
        leaking_groups,
        ignored_files,
        format: "folder".into(),
        segments: 0,
        class_counts: BTreeMap::new(),
        warnings: Vec::new(),
        problems: Vec::new(),
    };
    index.finish_report();
    Ok(index)
}

/// Puts every class in every split's table (0 where it has none) and lists
/// the groups found in more than one split.
pub(crate) fn finish_tables(
    counts: &mut BTreeMap<String, BTreeMap<String, usize>>,
    classes: &[String],
    group_splits: BTreeMap<String, BTreeSet<String>>,
) -> Vec<LeakingGroup> {
    for per in counts.values_mut() {
        for c in classes {
            per.entry(c.clone()).or_insert(0);
        }
    }
    group_splits
        .into_iter()
        .filter(|(_, s)| s.len() > 1)
        .map(|(group, s)| LeakingGroup { group, splits: sort_splits(s) })
        .collect()
}

fn sort_splits(s: BTreeSet<String>) -> Vec<String> {
    let mut v: Vec<String> = s.into_iter().collect();
    v.sort_by_key(|x| SPLITS.iter().position(|s| s == x).unwrap_or(99));
    v
}

/// Probes files on `threads` worker threads, keeping the input order.
pub(crate) fn probe_all(
    paths: &[PathBuf],
    threads: usize,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Vec<Result<Option<VideoInfo>, String>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Result<Option<VideoInfo>, String>)>(threads * 2);
    let mut out: Vec<Option<Result<Option<VideoInfo>, String>>> = vec![None; paths.len()];
    std::thread::scope(|scope| {
        for w in 0..threads.min(paths.len()) {
            let tx = tx.clone();
            let next = &next;
            std::thread::Builder::new()
                .name(format!("vidi-probe-{w}"))
                .spawn_scoped(scope, move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = paths.get(i) else { break };
                    let r = probe(p).map(Some).map_err(|e| crate::video::without_path(&e.to_string(), p));
                    if tx.send((i, r)).is_err() {
                        break;
                    }
                })
                .ok(); // A worker that cannot start leaves the work to the others.
        }
        drop(tx);
        let mut done = 0;
        for (i, r) in rx {
            out[i] = Some(r);
            done += 1;
            progress(done, paths.len());
        }
    });
    out.into_iter().map(|r| r.unwrap_or_else(|| Err("not checked".into()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ucf101_groups() {
        assert_eq!(ucf101_group(Path::new("a/v_ApplyEyeMakeup_g01_c01.avi")).as_deref(), Some("ApplyEyeMakeup_g01"));
        assert_eq!(ucf101_group(Path::new("v_Basket_ball_g25_c07.mp4")).as_deref(), Some("Basket_ball_g25"));
        assert_eq!(ucf101_group(Path::new("holiday.mp4")), None);
        assert_eq!(ucf101_group(Path::new("x_g1.mp4")), None);
    }
}
