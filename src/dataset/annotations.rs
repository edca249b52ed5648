//! Annotation files: a dataset described by lists instead of (or on top of) folders.
//!
//! A [`DataSource`] is a folder in either of [`super::index`]'s layouts, a
//! folder of videos with split lists (`--classes`, `--train`, `--val`,
//! `--test`), or one annotation file. Formats are told apart by content:
//!
//! - UCF101's lists: `classInd.txt` ("1 ApplyEyeMakeup"), `trainlist0N.txt`
//!   ("Class/v_x.avi 1", 1-based) and `testlist0N.txt` (no label: the
//!   path's folder names the class);
//! - HMDB51's split files `<class>_test_splitN.txt` ("video.avi 0|1|2":
//!   1 train, 2 test, 0 unused; the class is the file name's);
//! - mmaction2's video lists ("path label_index", 0-based) with a classes
//!   file of one name per line;
//! - CSV with a header: a path column (video/path/file/filename), a label
//!   column (label/class), optional start and end in seconds
//!   (start/end/time_start/time_end), split and group columns;
//! - Kinetics CSVs (`label,youtube_id,time_start,time_end,split`): the clip
//!   `<youtube_id>_<start:06d>_<end:06d>.mp4`;
//! - Something-Something v2 JSON lists (`id`, `template`/`label`) with
//!   `labels.json`; the videos are `<id>.webm`.
//!
//! A row with a start and an end is a segment: a sample of its own, of which
//! samplers see only `[start, end)` (see [`super::sampler::Segment`]).
//! Label ids are a classes file's indices when one gives them, otherwise the
//! names sorted (Python's `sorted`, the guide's rule). Rows that cannot be
//! used (missing files, unknown labels or indices, ranges outside the video)
//! are listed with the reason and skipped; only a file that cannot be read as
//! any format, an empty CSV or a CSV without a label column stop indexing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::index::{
    finish_tables, index_folder_with_progress, probe_all, ucf101_group, DatasetIndex, IndexOptions, Layout, Sample,
    Unreadable,
};
use super::lists::{parse_list, read_classes, ClassTable, Format, Row, RowLabel};
use super::sampler::Segment;
use super::DatasetError;
use crate::video::VideoInfo;

/// Where a dataset comes from: a folder, a folder with split lists, or an annotation file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DataSource {
    /// A dataset folder, a folder of videos the lists name, or an annotation file.
    pub path: PathBuf,
    /// A classes file: `classInd.txt` ("1 Name"), one name per line, or SSv2's `labels.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<PathBuf>,
    /// Lists of the train split.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub train: Vec<PathBuf>,
    /// Lists of the val split.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub val: Vec<PathBuf>,
    /// Lists of the test split.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<PathBuf>,
}

impl DataSource {
    /// A plain folder or annotation file, with no lists.
    pub fn path(path: impl Into<PathBuf>) -> DataSource {
        DataSource { path: path.into(), ..Default::default() }
    }

    /// Whether this is a dataset folder alone (today's layouts, no lists).
    pub fn is_plain_folder(&self) -> bool {
        self.classes.is_none()
            && self.train.is_empty()
            && self.val.is_empty()
            && self.test.is_empty()
            && !self.path.is_file()
    }
}

/// A bad annotation file: what stops indexing (rows are never fatal).
#[derive(Debug, thiserror::Error)]
pub enum AnnotationError {
    /// A CSV with no header line and no rows.
    #[error("{path}: the CSV is empty (expected a header such as video,label,start,end,split)")]
    EmptyCsv {
        /// The file.
        path: PathBuf,
    },
    /// A CSV whose header names no label column.
    #[error("{path}: no label column (name one 'label' or 'class'; the header has: {header})")]
    NoLabelColumn {
        /// The file.
        path: PathBuf,
        /// The header's columns.
        header: String,
    },
    /// A CSV whose header names no path column.
    #[error("{path}: no path column (name one 'video', 'path', 'file' or 'filename'; the header has: {header})")]
    NoPathColumn {
        /// The file.
        path: PathBuf,
        /// The header's columns.
        header: String,
    },
    /// A list or classes file with nothing in it.
    #[error("{path}: the file is empty")]
    EmptyList {
        /// The file.
        path: PathBuf,
    },
    /// A file that is none of the known formats.
    #[error("{path}: not an annotation file vidi knows (UCF101 or HMDB51 lists, mmaction2 lists, CSV with a header, Kinetics CSV, Something-Something JSON)")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// JSON that does not parse or has the wrong shape.
    #[error("{path}: {message}")]
    BadJson {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A CSV with an unclosed quote.
    #[error("{path} line {line}: a quoted field is never closed")]
    UnclosedQuote {
        /// The file.
        path: PathBuf,
        /// 1-based line where the field starts.
        line: usize,
    },
    /// Split lists given with an annotation file instead of a folder of videos.
    #[error("{path}: --train/--val/--test lists need a folder of videos as the source, not a file")]
    ListsNeedFolder {
        /// The source given.
        path: PathBuf,
    },
    /// The split's output file already exists.
    #[error("{path}: already exists; choose a new file (nothing was written)")]
    OutputExists {
        /// The file.
        path: PathBuf,
    },
    /// The source does not exist.
    #[error("{path}: no such file or folder")]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// A file that cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Something wrong in a list or classes file that is not one video's (reported, never fatal).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Problem {
    /// The list or classes file.
    pub file: PathBuf,
    /// 1-based line (or JSON entry), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// What is wrong and what was done, in one line.
    pub message: String,
}

/// Indexes any dataset source: a folder as [`super::index::index_folder`] does,
/// or lists and annotation files as this module describes.
pub fn index_source(
    src: &DataSource,
    opts: &IndexOptions,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<DatasetIndex, DatasetError> {
    if src.is_plain_folder() {
        return index_folder_with_progress(&src.path, opts, progress);
    }
    if !src.path.exists() {
        return Err(AnnotationError::NotFound { path: src.path.clone() }.into());
    }
    let mut problems = Vec::new();
    let mut lists: Vec<(PathBuf, Option<&str>)> = Vec::new();
    let base = if src.path.is_file() {
        if !(src.train.is_empty() && src.val.is_empty() && src.test.is_empty()) {
            return Err(AnnotationError::ListsNeedFolder { path: src.path.clone() }.into());
        }
        lists.push((src.path.clone(), None));
        src.path.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        src.path.clone()
    };
    for (split, ls) in [("train", &src.train), ("val", &src.val), ("test", &src.test)] {
        for l in ls {
            lists.push((l.clone(), Some(split)));
        }
    }
    let mut classes = match &src.classes {
        Some(c) => Some(read_classes(c, &mut problems)?),
        None => None,
    };
    // SSv2: labels.json beside the list, when no classes file is given.
    let mut rows = Vec::new();
    let mut formats = BTreeSet::new();
    for (l, split) in &lists {
        let numbered = classes.as_ref().is_some_and(|c| c.numbered);
        let (format, r) = parse_list(l, &base, *split, numbered, &mut problems)?;
        if format == Format::Ssv2 && classes.is_none() {
            let beside = l.parent().unwrap_or(Path::new("")).join("labels.json");
            if beside.is_file() {
                classes = Some(read_classes(&beside, &mut problems)?);
            }
        }
        formats.insert(format.name());
        rows.extend(r);
    }
    if lists.is_empty() {
        // Only --classes: the folder's own layout, labelled by the classes file.
        let folder = index_folder_with_progress(
            &src.path,
            &IndexOptions { check_readable: false, ..opts.clone() },
            &mut |_, _| {},
        )?;
        rows = folder
            .samples
            .into_iter()
            .map(|s| Row {
                candidates: vec![s.path],
                label: Some(RowLabel::Name(s.class)),
                split: s.split,
                start: None,
                end: None,
                group: None,
                file: src.path.clone(),
                line: 0,
            })
            .collect();
        formats.insert(Format::Folder.name());
    }
    Ok(build_index(src, rows, classes, problems, formats.into_iter().collect::<Vec<_>>().join("+"), opts, progress))
}

/// A row resolved to a file and a class, waiting for its probe.
struct Pending {
    path: PathBuf,
    class: String,
    split: Option<String>,
    start: Option<f64>,
    end: Option<f64>,
    group: Option<String>,
    file: PathBuf,
    line: usize,
}

fn where_listed(file: &Path, line: usize) -> String {
    if line == 0 {
        return file.display().to_string();
    }
    format!("{} line {line}", file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
}

fn build_index(
    src: &DataSource,
    rows: Vec<Row>,
    table: Option<ClassTable>,
    mut problems: Vec<Problem>,
    format: String,
    opts: &IndexOptions,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> DatasetIndex {
    let mut unreadable = Vec::new();
    let mut pending = Vec::new();
    let mut seen = BTreeSet::new();
    for r in rows {
        let listed = where_listed(&r.file, r.line);
        let shown = r.candidates.first().cloned().unwrap_or_else(|| r.file.clone());
        let class = match (&r.label, &table) {
            (None, _) => {
                unreadable.push(Unreadable { path: shown, reason: format!("{listed}: no label"), split: r.split });
                continue;
            }
            (Some(RowLabel::Name(n)), Some(t)) if t.id_of(n).is_none() => {
                unreadable.push(Unreadable {
                    path: shown,
                    reason: format!("{listed}: label '{n}' is not in the classes file"),
                    split: r.split,
                });
                continue;
            }
            (Some(RowLabel::Index(i)), Some(t)) => match t.by_index.get(i) {
                Some(id) => t.names[*id].clone(),
                None => {
                    let (lo, hi) = (t.by_index.keys().next().copied(), t.by_index.keys().last().copied());
                    let range = match (lo, hi) {
                        (Some(lo), Some(hi)) => format!(" ({lo}..{hi})"),
                        _ => String::new(),
                    };
                    unreadable.push(Unreadable {
                        path: shown,
                        reason: format!("{listed}: label index {i} is not in the classes file{range}"),
                        split: r.split,
                    });
                    continue;
                }
            },
            (Some(RowLabel::Name(n)), _) => n.clone(),
            (Some(RowLabel::Index(i)), None) => {
                // No classes file: the class is the path's folder, else the index itself.
                let folder = shown
                    .parent()
                    .filter(|p| *p != src.path)
                    .and_then(|p| p.file_name())
                    .map(|f| f.to_string_lossy().into_owned());
                folder.unwrap_or_else(|| i.to_string())
            }
        };
        let Some(path) = r.candidates.iter().find(|c| c.is_file()).cloned() else {
            // Something there that is no file (a folder, a broken link) says what it is.
            let there = r.candidates.iter().find(|c| c.symlink_metadata().is_ok());
            let reason = match there.and_then(|c| crate::video::not_a_file_reason(c)) {
                Some(why) => format!("{listed}: {why}"),
                None => format!("{listed}: no such file"),
            };
            unreadable.push(Unreadable { path: shown, reason, split: r.split });
            continue;
        };
        let key = (path.clone(), r.start.map(f64::to_bits), r.end.map(f64::to_bits), r.split.clone());
        if !seen.insert(key) {
            problems.push(Problem {
                file: r.file.clone(),
                line: Some(r.line),
                message: format!("{} is listed again; the repeat is left out", path.display()),
            });
            continue;
        }
        pending.push(Pending {
            path,
            class,
            split: r.split,
            start: r.start,
            end: r.end,
            group: r.group,
            file: r.file,
            line: r.line,
        });
    }

    // Probe each file once, however many segments it holds.
    let unique: Vec<PathBuf> = pending.iter().map(|p| p.path.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let infos: HashMap<PathBuf, Result<Option<VideoInfo>, String>> = if opts.check_readable {
        unique.iter().cloned().zip(probe_all(&unique, opts.threads.max(1), progress)).collect()
    } else {
        unique.iter().cloned().map(|p| (p, Ok(None))).collect()
    };

    let mut kept: Vec<(Pending, Option<VideoInfo>, Option<Segment>)> = Vec::new();
    for p in pending {
        let listed = where_listed(&p.file, p.line);
        let info = match infos.get(&p.path) {
            Some(Ok(i)) => i.clone(),
            Some(Err(reason)) => {
                unreadable.push(Unreadable { path: p.path, reason: format!("{listed}: {reason}"), split: p.split });
                continue;
            }
            None => None,
        };
        let segment = if p.start.is_some() || p.end.is_some() {
            let duration = info.as_ref().map(|i| i.sampling_duration_s());
            let start = p.start.unwrap_or(0.0);
            let end = match (p.end, duration) {
                (Some(e), _) => e,
                (None, Some(d)) => d,
                (None, None) => f64::INFINITY,
            };
            // A frame's worth of slack at the end: lists round times.
            let slack = info.as_ref().map_or(0.0, |i| if i.fps > 0.0 { 1.0 / i.fps } else { 0.0 }) + 1e-6;
            let outside = start < 0.0 || end <= start || duration.is_some_and(|d| start >= d || end > d + slack);
            if outside {
                let within = duration.map(|d| format!(" (0-{d:.3} s)")).unwrap_or_default();
                unreadable.push(Unreadable {
                    path: p.path,
                    reason: format!(
                        "{listed}: the segment {start}-{end} s lies outside the video{within}",
                        end = if end.is_finite() { end.to_string() } else { "end".into() }
                    ),
                    split: p.split,
                });
                continue;
            }
            let end = duration.map_or(end, |d| end.min(d));
            Some(Segment { start_s: start, end_s: end })
        } else {
            None
        };
        kept.push((p, info, segment));
    }
    unreadable.sort_by(|a, b| a.path.cmp(&b.path));

    let classes: Vec<String> = match &table {
        Some(t) => t.names.clone(),
        None => kept.iter().map(|k| k.0.class.clone()).collect::<BTreeSet<_>>().into_iter().collect(),
    };
    let used: BTreeSet<&str> = kept.iter().map(|k| k.0.class.as_str()).collect();
    let empty_classes: Vec<String> = match &table {
        Some(t) => t.names.iter().filter(|n| !used.contains(n.as_str())).cloned().collect(),
        None => Vec::new(),
    };
    let layout = if kept.iter().any(|k| k.0.split.is_some()) { Layout::Split } else { Layout::Flat };
    let mut counts: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut group_splits: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut samples = Vec::with_capacity(kept.len());
    for (p, info, segment) in kept {
        let key = p.split.clone().unwrap_or_else(|| "all".into());
        *counts.entry(key).or_default().entry(p.class.clone()).or_default() += 1;
        let group = p.group.clone().or_else(|| ucf101_group(&p.path));
        if let (Some(g), Some(s)) = (&group, &p.split) {
            group_splits.entry(g.clone()).or_default().insert(s.clone());
        }
        let label = classes.iter().position(|c| *c == p.class).unwrap_or(0);
        samples.push(Sample { path: p.path, class: p.class, label, split: p.split, group, info, segment });
    }
    let leaking_groups = finish_tables(&mut counts, &classes, group_splits);
    let mut index = DatasetIndex {
        root: src.path.clone(),
        layout,
        classes,
        samples,
        counts,
        unreadable,
        empty_classes,
        leaking_groups,
        ignored_files: 0,
        format,
        segments: 0,
        class_counts: BTreeMap::new(),
        warnings: Vec::new(),
        problems,
    };
    index.finish_report();
    index
}
