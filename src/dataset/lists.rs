//! The readers of each list format that [`super::annotations`] takes: a
//! classes file's table, and each list's rows before their files and labels
//! are checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::annotations::{AnnotationError, Problem};

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
    pub(crate) fn id_of(&self, name: &str) -> Option<usize> {
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
pub(super) enum RowLabel {
    /// A class name.
    Name(String),
    /// An index into the classes file (or, without one, a class named by the index).
    Index(i64),
}

/// One row of a list, before its file and label are checked.
#[derive(Clone, Debug)]
pub(super) struct Row {
    /// Paths to try, in order; the first that exists is the video.
    pub(super) candidates: Vec<PathBuf>,
    pub(super) label: Option<RowLabel>,
    pub(super) split: Option<String>,
    pub(super) start: Option<f64>,
    pub(super) end: Option<f64>,
    pub(super) group: Option<String>,
    pub(super) file: PathBuf,
    pub(super) line: usize,
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
pub(super) fn parse_list(
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
