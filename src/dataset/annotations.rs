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
    index_folder_with_progress, probe_all, ucf101_group, DatasetIndex, IndexOptions, Layout, LeakingGroup, Sample,
    Unreadable, SPLITS,
};
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

/// The classes of a classes file: names by label id, and how list indices map to ids.
#[derive(Clone, Debug, Default)]
pub struct ClassTable {
    /// Names in label-id order.
    pub names: Vec<String>,
    /// A list's label index -> label id.
    pub by_index: BTreeMap<i64, usize>,
    /// Whether the file numbers its classes ("1 Name", UCF101's classInd.txt).
    pub numbered: bool,
}

impl ClassTable {
    fn id_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

/// Text of a file with a BOM and CRLF line ends taken away.
fn read_text(path: &Path) -> Result<String, AnnotationError> {
    let bytes = std::fs::read(path).map_err(|source| AnnotationError::Io { path: path.into(), source })?;
    let text = String::from_utf8_lossy(&bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    Ok(text.replace("\r\n", "\n").replace('\r', "\n"))
}

/// Lines with their 1-based numbers, blank ones left out.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty())
}

/// Whether every line is "N name".
fn numbered_text(text: &str) -> bool {
    lines(text).all(|(_, l)| {
        let mut it = l.splitn(2, char::is_whitespace);
        it.next().is_some_and(|n| n.parse::<i64>().is_ok()) && it.next().is_some_and(|r| !r.trim().is_empty())
    })
}

/// Reads a classes file: `labels.json` (name -> index), "N name" lines
/// (`classInd.txt`) or one name per line (index = line order, from 0).
/// A name given twice keeps its first entry; the rest are problems.
pub fn read_classes(path: &Path, problems: &mut Vec<Problem>) -> Result<ClassTable, AnnotationError> {
    let text = read_text(path)?;
    let mut entries: Vec<(i64, String, Option<usize>)> = Vec::new();
    if text.trim_start().starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| AnnotationError::BadJson { path: path.into(), message: e.to_string() })?;
        let obj = v.as_object().ok_or_else(|| AnnotationError::BadJson {
            path: path.into(),
            message: "expected an object of label name -> index".into(),
        })?;
        for (name, idx) in obj {
            let i = idx.as_i64().or_else(|| idx.as_str().and_then(|s| s.trim().parse().ok()));
            match i {
                Some(i) => entries.push((i, name.clone(), None)),
                None => problems.push(Problem {
                    file: path.into(),
                    line: None,
                    message: format!("label '{name}' has no index ({idx}); left out"),
                }),
            }
        }
        entries.sort();
    } else {
        let all: Vec<(usize, &str)> = lines(&text).collect();
        if all.is_empty() {
            return Err(AnnotationError::EmptyList { path: path.into() });
        }
        let numbered = numbered_text(&text);
        for (k, (no, l)) in all.iter().enumerate() {
            if numbered {
                let (n, name) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
                entries.push((n.parse().unwrap_or(0), name.trim().to_string(), Some(*no)));
            } else {
                entries.push((k as i64, l.to_string(), Some(*no)));
            }
        }
        entries.sort_by_key(|e| e.0);
    }
    let mut table = ClassTable {
        numbered: !text.trim_start().starts_with('{') && entries.iter().all(|e| e.2.is_some()) && numbered_text(&text),
        ..Default::default()
    };
    for (idx, name, line) in entries {
        if let Some(first) = table.id_of(&name) {
            problems.push(Problem {
                file: path.into(),
                line,
                message: format!(
                    "class '{name}' is listed twice (index {idx}, first as label {first}); the second entry is left out"
                ),
            });
            continue;
        }
        if table.by_index.contains_key(&idx) {
            problems.push(Problem {
                file: path.into(),
                line,
                message: format!("index {idx} is given twice; '{name}' is left out"),
            });
            continue;
        }
        table.by_index.insert(idx, table.names.len());
        table.names.push(name);
    }
    Ok(table)
}

/// Where a row's label comes from.
#[derive(Clone, Debug)]
enum RowLabel {
    /// A class name.
    Name(String),
    /// An index into the classes file (or, without one, a class named by the index).
    Index(i64),
}

/// One row of a list, before its file and label are checked.
#[derive(Clone, Debug)]
struct Row {
    /// Paths to try, in order; the first that exists is the video.
    candidates: Vec<PathBuf>,
    label: Option<RowLabel>,
    split: Option<String>,
    start: Option<f64>,
    end: Option<f64>,
    group: Option<String>,
    file: PathBuf,
    line: usize,
}

/// The list formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `<dir>/{train,val,test}/<Class>/*` or `<dir>/<Class>/*`.
    Folder,
    /// UCF101 `trainlist`/`testlist` lines.
    Ucf101,
    /// HMDB51 `<class>_test_splitN.txt`.
    Hmdb51,
    /// mmaction2 "path index" lines.
    Mmaction2,
    /// A CSV with a header.
    Csv,
    /// A Kinetics CSV.
    Kinetics,
    /// Something-Something v2 JSON.
    Ssv2,
}

impl Format {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Format::Folder => "folder",
            Format::Ucf101 => "ucf101",
            Format::Hmdb51 => "hmdb51",
            Format::Mmaction2 => "mmaction2",
            Format::Csv => "csv",
            Format::Kinetics => "kinetics",
            Format::Ssv2 => "ssv2",
        }
    }
}

/// A split name as the lists write it, as one of train/val/test.
fn normal_split(s: &str) -> Option<&'static str> {
    match s.trim().to_ascii_lowercase().as_str() {
        "train" | "training" => Some("train"),
        "val" | "valid" | "validation" | "validate" | "dev" => Some("val"),
        "test" | "testing" => Some("test"),
        _ => None,
    }
}

/// Splits CSV text into records of fields (RFC 4180 quotes), each with its 1-based line.
fn csv_records(text: &str, path: &Path) -> Result<Vec<(usize, Vec<String>)>, AnnotationError> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut rec: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut rec_line = 1;
    let mut quote_line = 1;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.trim().is_empty() => {
                field.clear();
                quoted = true;
                quote_line = line;
                any = true;
            }
            ',' => {
                rec.push(std::mem::take(&mut field));
                any = true;
            }
            '\n' => {
                rec.push(std::mem::take(&mut field));
                if any || rec.iter().any(|f| !f.trim().is_empty()) {
                    out.push((rec_line, std::mem::take(&mut rec)));
                }
                rec.clear();
                any = false;
                line += 1;
                rec_line = line;
            }
            _ => {
                field.push(c);
                any = true;
            }
        }
    }
    if quoted {
        return Err(AnnotationError::UnclosedQuote { path: path.into(), line: quote_line });
    }
    rec.push(field);
    if any || rec.iter().any(|f| !f.trim().is_empty()) {
        out.push((rec_line, rec));
    }
    Ok(out.into_iter().map(|(l, r)| (l, r.into_iter().map(|f| f.trim().to_string()).collect())).collect())
}

/// Does this text look like a CSV with a header naming known columns?
fn looks_like_csv(text: &str) -> bool {
    let Some((_, first)) = lines(text).next() else { return false };
    if !first.contains(',') {
        return false;
    }
    const KNOWN: &[&str] = &[
        "video",
        "path",
        "file",
        "filename",
        "label",
        "class",
        "start",
        "end",
        "time_start",
        "time_end",
        "split",
        "group",
        "youtube_id",
    ];
    first.split(',').any(|h| KNOWN.contains(&h.trim().trim_matches('"').to_ascii_lowercase().as_str()))
}

/// A list file's rows. `base` is the videos folder; `split` the split the list was given for.
fn parse_list(
    path: &Path,
    base: &Path,
    split: Option<&str>,
    numbered_classes: bool,
    problems: &mut Vec<Problem>,
) -> Result<(Format, Vec<Row>), AnnotationError> {
    let text = read_text(path)?;
    let list_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let here = |rel: &str| -> Vec<PathBuf> {
        let mut c = vec![base.join(rel)];
        if list_dir != base {
            c.push(list_dir.join(rel));
        }
        c
    };
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return parse_ssv2(path, &text, base, &list_dir, split).map(|r| (Format::Ssv2, r));
    }
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) || looks_like_csv(&text) {
        return parse_csv(path, &text, &here, base, &list_dir, split, problems);
    }
    let all: Vec<(usize, &str)> = lines(&text).collect();
    if all.is_empty() {
        return Err(AnnotationError::EmptyList { path: path.into() });
    }
    let tokens: Vec<(usize, Vec<&str>)> = all.iter().map(|(n, l)| (*n, l.split_whitespace().collect())).collect();
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let hmdb_class = name.rfind("_test_split").map(|i| name[..i].to_string());
    let two_with_index = tokens.iter().all(|(_, t)| t.len() == 2 && t[1].parse::<i64>().is_ok());
    let mut rows = Vec::new();
    if let (Some(class), true) = (&hmdb_class, two_with_index) {
        for (line, t) in &tokens {
            let split = match t[1] {
                "1" => "train",
                "2" => "test",
                "0" => continue,
                other => {
                    problems.push(Problem {
                        file: path.into(),
                        line: Some(*line),
                        message: format!("'{other}' is not 0, 1 or 2 (unused, train, test); the row is left out"),
                    });
                    continue;
                }
            };
            let mut candidates = here(&format!("{class}/{}", t[0]));
            candidates.extend(here(t[0]));
            rows.push(Row {
                candidates,
                label: Some(RowLabel::Name(class.clone())),
                split: Some(split.into()),
                start: None,
                end: None,
                group: None,
                file: path.into(),
                line: *line,
            });
        }
        return Ok((Format::Hmdb51, rows));
    }
    // "path index" (UCF101 trainlist with classInd's numbers, mmaction2 with
    // one name per line) or "path" (UCF101 testlist).
    let mut format = if numbered_classes { Format::Ucf101 } else { Format::Mmaction2 };
    for (line, t) in &tokens {
        let (p, label) = match t.as_slice() {
            [p] => {
                format = Format::Ucf101;
                let folder =
                    Path::new(p).parent().and_then(|f| f.file_name()).map(|f| f.to_string_lossy().into_owned());
                match folder {
                    Some(f) => (*p, Some(RowLabel::Name(f))),
                    None => (*p, None),
                }
            }
            [p, i] => match i.parse::<i64>() {
                Ok(i) => (*p, Some(RowLabel::Index(i))),
                Err(_) => {
                    problems.push(Problem {
                        file: path.into(),
                        line: Some(*line),
                        message: format!("'{i}' is not a label index; the row is left out"),
                    });
                    continue;
                }
            },
            _ => {
                problems.push(Problem {
                    file: path.into(),
                    line: Some(*line),
                    message: "expected 'path' or 'path label_index'; the row is left out".into(),
                });
                continue;
            }
        };
        rows.push(Row {
            candidates: here(p),
            label,
            split: split.map(str::to_string),
            start: None,
            end: None,
            group: None,
            file: path.into(),
            line: *line,
        });
    }
    if rows.is_empty() {
        return Err(AnnotationError::UnknownFormat { path: path.into() });
    }
    Ok((format, rows))
}

fn parse_seconds(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

#[allow(clippy::too_many_arguments)]
fn parse_csv(
    path: &Path,
    text: &str,
    here: &dyn Fn(&str) -> Vec<PathBuf>,
    base: &Path,
    list_dir: &Path,
    split: Option<&str>,
    problems: &mut Vec<Problem>,
) -> Result<(Format, Vec<Row>), AnnotationError> {
    let records = csv_records(text, path)?;
    let Some((_, header)) = records.first() else {
        return Err(AnnotationError::EmptyCsv { path: path.into() });
    };
    let header: Vec<String> = header.iter().map(|h| h.to_ascii_lowercase()).collect();
    let col = |names: &[&str]| names.iter().find_map(|n| header.iter().position(|h| h == n));
    let header_text = header.join(", ");
    let label_col = col(&["label", "class"])
        .ok_or_else(|| AnnotationError::NoLabelColumn { path: path.into(), header: header_text.clone() })?;
    let kinetics = col(&["youtube_id"]);
    let path_col = col(&["video", "path", "file", "filename"]);
    if kinetics.is_none() && path_col.is_none() {
        return Err(AnnotationError::NoPathColumn { path: path.into(), header: header_text });
    }
    let start_col = col(&["start", "time_start"]);
    let end_col = col(&["end", "time_end"]);
    let split_col = col(&["split"]);
    let group_col = col(&["group"]);
    let mut rows = Vec::new();
    for (line, rec) in records.iter().skip(1) {
        let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).map(String::as_str).filter(|s| !s.is_empty());
        let label = get(Some(label_col)).map(|l| RowLabel::Name(l.to_string()));
        let row_split = match get(split_col) {
            Some(s) => match normal_split(s) {
                Some(s) => Some(s.to_string()),
                None => {
                    problems.push(Problem {
                        file: path.into(),
                        line: Some(*line),
                        message: format!("split '{s}' is not train, val or test; the row is left out"),
                    });
                    continue;
                }
            },
            None => split.map(str::to_string),
        };
        let (candidates, start, end) = if let Some(yc) = kinetics {
            let (Some(id), Some(s), Some(e)) = (get(Some(yc)), get(start_col), get(end_col)) else {
                problems.push(Problem {
                    file: path.into(),
                    line: Some(*line),
                    message: "a Kinetics row needs youtube_id, time_start and time_end; the row is left out".into(),
                });
                continue;
            };
            let (Some(s), Some(e)) = (parse_seconds(s), parse_seconds(e)) else {
                problems.push(Problem {
                    file: path.into(),
                    line: Some(*line),
                    message: "time_start and time_end must be numbers; the row is left out".into(),
                });
                continue;
            };
            // The downloaded clips are named by the range: <id>_<start:06d>_<end:06d>.mp4.
            let name = format!("{id}_{:06}_{:06}.mp4", s as i64, e as i64);
            let mut c = Vec::new();
            for dir in [base, list_dir] {
                c.push(dir.join(&name));
                if let Some(RowLabel::Name(l)) = &label {
                    c.push(dir.join(l).join(&name));
                    if let Some(sp) = get(split_col) {
                        c.push(dir.join(sp).join(l).join(&name));
                    }
                }
            }
            c.dedup();
            (c, None, None)
        } else {
            let Some(p) = get(path_col) else {
                problems.push(Problem {
                    file: path.into(),
                    line: Some(*line),
                    message: "no video path; the row is left out".into(),
                });
                continue;
            };
            let mut times = [None, None];
            let mut bad = false;
            for (k, c) in [start_col, end_col].into_iter().enumerate() {
                if let Some(v) = get(c) {
                    match parse_seconds(v) {
                        Some(t) => times[k] = Some(t),
                        None => {
                            problems.push(Problem {
                                file: path.into(),
                                line: Some(*line),
                                message: format!("'{v}' is not a time in seconds; the row is left out"),
                            });
                            bad = true;
                        }
                    }
                }
            }
            if bad {
                continue;
            }
            (here(p), times[0], times[1])
        };
        rows.push(Row {
            candidates,
            label,
            split: row_split,
            start,
            end,
            group: get(group_col).map(str::to_string),
            file: path.into(),
            line: *line,
        });
    }
    Ok((if kinetics.is_some() { Format::Kinetics } else { Format::Csv }, rows))
}

fn parse_ssv2(
    path: &Path,
    text: &str,
    base: &Path,
    list_dir: &Path,
    split: Option<&str>,
) -> Result<Vec<Row>, AnnotationError> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| AnnotationError::BadJson { path: path.into(), message: e.to_string() })?;
    let arr = v.as_array().ok_or_else(|| AnnotationError::BadJson {
        path: path.into(),
        message: "expected a list of objects with id and template".into(),
    })?;
    let name = path.file_stem().map(|s| s.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let file_split = split.map(str::to_string).or_else(|| normal_split(&name).map(str::to_string));
    let mut rows = Vec::new();
    for (k, e) in arr.iter().enumerate() {
        let id = e.get("id").and_then(|i| i.as_str().map(str::to_string).or_else(|| i.as_i64().map(|n| n.to_string())));
        // The label names of labels.json are the templates without their brackets.
        let label = e
            .get("template")
            .and_then(|t| t.as_str())
            .map(|t| t.replace(['[', ']'], ""))
            .or_else(|| e.get("label").and_then(|l| l.as_str()).map(str::to_string));
        let file = format!("{}.webm", id.clone().unwrap_or_default());
        let mut candidates = vec![base.join(&file)];
        if list_dir != base {
            candidates.push(list_dir.join(&file));
        }
        rows.push(Row {
            candidates: if id.is_some() { candidates } else { Vec::new() },
            label: label.map(RowLabel::Name),
            split: file_split.clone(),
            start: None,
            end: None,
            group: None,
            file: path.into(),
            line: k + 1,
        });
    }
    Ok(rows)
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
    for per in counts.values_mut() {
        for c in &classes {
            per.entry(c.clone()).or_insert(0);
        }
    }
    let leaking_groups = group_splits
        .into_iter()
        .filter(|(_, s)| s.len() > 1)
        .map(|(group, s)| {
            let mut splits: Vec<String> = s.into_iter().collect();
            splits.sort_by_key(|x| SPLITS.iter().position(|s| s == x).unwrap_or(99));
            LeakingGroup { group, splits }
        })
        .collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_commas_and_blank_lines() {
        let r = csv_records("a,b\n\"x, y\",\"say \"\"hi\"\"\"\n\n1,2", Path::new("t.csv")).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[1], (2, vec!["x, y".to_string(), "say \"hi\"".to_string()]));
        assert_eq!(r[2].0, 4);
        assert!(matches!(
            csv_records("a\n\"open", Path::new("t.csv")),
            Err(AnnotationError::UnclosedQuote { line: 2, .. })
        ));
    }

    #[test]
    fn split_names() {
        assert_eq!(normal_split("Validation"), Some("val"));
        assert_eq!(normal_split("validate"), Some("val"));
        assert_eq!(normal_split("holdout"), None);
    }
}
