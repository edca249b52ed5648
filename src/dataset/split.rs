//! Group-aware, seeded split of a flat `<root>/<Class>/*` folder into
//! `<out>/{train,val,test}/<Class>/*`. Files are hard-linked (or copied when
//! a link is impossible); the source folder is never changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use super::index::{index_folder, IndexOptions, Layout};
use super::DatasetError;

/// How to split.
#[derive(Clone, Debug)]
pub struct SplitOptions {
    /// Fraction of each class's videos for validation.
    pub val: f64,
    /// Fraction for test.
    pub test: f64,
    /// Seed of the shuffle: the same seed gives the same split.
    pub seed: u64,
    /// Copy files instead of hard-linking them.
    pub copy: bool,
    /// Keep UCF101 groups (`_gNN_`) whole (on by default; off only for data known to have no shared scenes).
    pub group_aware: bool,
    /// Skip videos that do not decode (probing each one).
    pub check_readable: bool,
}

impl Default for SplitOptions {
    fn default() -> Self {
        SplitOptions { val: 0.1, test: 0.2, seed: 0, copy: false, group_aware: true, check_readable: true }
    }
}

/// What a split did: where every file went.
#[derive(Clone, Debug, Serialize)]
pub struct SplitReport {
    /// The output folder.
    pub out: PathBuf,
    /// split -> class -> count.
    pub counts: BTreeMap<String, BTreeMap<String, usize>>,
    /// (split, source file) for every file placed.
    pub assignment: Vec<(String, PathBuf)>,
    /// How many files were copied because linking failed.
    pub copied: usize,
    /// Seed used.
    pub seed: u64,
}

/// Splits `src` (flat layout) into `out`. `out` must not exist or be empty.
pub fn split_folder(src: &Path, out: &Path, opts: &SplitOptions) -> Result<SplitReport, DatasetError> {
    if !(0.0..1.0).contains(&opts.val) || !(0.0..1.0).contains(&opts.test) || opts.val + opts.test >= 1.0 {
        return Err(DatasetError::BadRatios { val: opts.val, test: opts.test });
    }
    let index = index_folder(src, &IndexOptions { check_readable: opts.check_readable, ..Default::default() })?;
    if index.layout != Layout::Flat {
        return Err(DatasetError::AlreadySplit { path: src.into() });
    }
    if out.exists() {
        let non_empty =
            std::fs::read_dir(out).map_err(|source| DatasetError::Io { path: out.into(), source })?.next().is_some();
        if non_empty {
            return Err(DatasetError::OutputNotEmpty { path: out.into() });
        }
    }
    let src_canon = src.canonicalize().map_err(|source| DatasetError::Io { path: src.into(), source })?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(pc) = parent.canonicalize() {
            if pc.starts_with(&src_canon) {
                return Err(DatasetError::OutputInsideSource { path: out.into() });
            }
        }
    }

    let plan = plan_split(
        &index.samples.iter().map(|s| (s.class.clone(), s.path.clone(), s.group.clone())).collect::<Vec<_>>(),
        opts,
    );

    let mut counts: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut copied = 0;
    for (split, class, path) in &plan {
        let dir = out.join(split).join(class);
        std::fs::create_dir_all(&dir).map_err(|source| DatasetError::Io { path: dir.clone(), source })?;
        let name = path.file_name().ok_or_else(|| DatasetError::NotFound { path: path.clone() })?;
        let dst = dir.join(name);
        let linked = !opts.copy && std::fs::hard_link(path, &dst).is_ok();
        if !linked {
            std::fs::copy(path, &dst).map_err(|source| DatasetError::Io { path: dst.clone(), source })?;
            copied += 1;
        }
        *counts.entry(split.clone()).or_default().entry(class.clone()).or_default() += 1;
    }
    let report = SplitReport {
        out: out.into(),
        counts,
        assignment: plan.iter().map(|(s, _, p)| (s.clone(), p.clone())).collect(),
        copied,
        seed: opts.seed,
    };
    let manifest = out.join("split.json");
    let text = serde_json::to_string_pretty(&report).unwrap_or_default();
    std::fs::write(&manifest, text).map_err(|source| DatasetError::Io { path: manifest, source })?;
    Ok(report)
}

/// Splits an annotation file without splits (a CSV of videos or segments)
/// into a new CSV with a `split` column, keeping groups whole: the `group`
/// column's, else UCF101's from the file name, and always the segments of
/// one video together (they share its scenes), across classes. Seeded as [`split_folder`];
/// `out` must not exist, and the source is never changed.
pub fn split_annotations(src: &Path, out: &Path, opts: &SplitOptions) -> Result<SplitReport, DatasetError> {
    use super::annotations::{index_source, AnnotationError, DataSource};
    if !(0.0..1.0).contains(&opts.val) || !(0.0..1.0).contains(&opts.test) || opts.val + opts.test >= 1.0 {
        return Err(DatasetError::BadRatios { val: opts.val, test: opts.test });
    }
    if out.exists() {
        return Err(AnnotationError::OutputExists { path: out.into() }.into());
    }
    let index = index_source(
        &DataSource::path(src),
        &IndexOptions { check_readable: opts.check_readable, ..Default::default() },
        &mut |_, _| {},
    )?;
    if index.layout != Layout::Flat {
        return Err(DatasetError::AlreadySplit { path: src.into() });
    }
    let plan = plan_units(&index.samples, opts);
    let base = src.parent().unwrap_or(Path::new(""));
    let field = |v: &str| {
        if v.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v.to_string()
        }
    };
    let mut text = String::from("video,label,start,end,group,split\n");
    let mut counts: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut assignment = Vec::new();
    for s in &index.samples {
        let split = plan.get(&unit_of(s, opts.group_aware)).cloned().unwrap_or_else(|| "train".into());
        let rel = s.path.strip_prefix(base).unwrap_or(&s.path);
        let (start, end) = s.segment.map(|g| (g.start_s.to_string(), g.end_s.to_string())).unwrap_or_default();
        text.push_str(&format!(
            "{},{},{start},{end},{},{split}\n",
            field(&rel.to_string_lossy()),
            field(&s.class),
            field(s.group.as_deref().unwrap_or(""))
        ));
        *counts.entry(split.clone()).or_default().entry(s.class.clone()).or_default() += 1;
        assignment.push((split, s.path.clone()));
    }
    std::fs::write(out, text).map_err(|source| DatasetError::Io { path: out.into(), source })?;
    Ok(SplitReport { out: out.into(), counts, assignment, copied: 0, seed: opts.seed })
}

/// The unit a sample is dealt with: its group (the `group` column's, else
/// UCF101's), else its video file, across classes: two segments of one video
/// never straddle splits, whatever their labels.
fn unit_of(s: &super::Sample, group_aware: bool) -> String {
    match &s.group {
        Some(g) if group_aware => format!("g:{g}"),
        _ => format!("f:{}", s.path.display()),
    }
}

/// Deals whole units (see [`unit_of`]), shuffled with the seed, to test and
/// then val until each holds its share of the samples; the rest, and always
/// at least one unit, go to train (scikit-learn's `GroupShuffleSplit` way).
fn plan_units(samples: &[super::Sample], opts: &SplitOptions) -> BTreeMap<String, String> {
    let mut sizes: BTreeMap<String, usize> = BTreeMap::new();
    for s in samples {
        *sizes.entry(unit_of(s, opts.group_aware)).or_default() += 1;
    }
    let n = samples.len();
    let mut units: Vec<&String> = sizes.keys().collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    units.shuffle(&mut rng);
    let want_test = (n as f64 * opts.test).round() as usize;
    let want_val = (n as f64 * opts.val).round() as usize;
    let (mut n_test, mut n_val) = (0, 0);
    let mut out = BTreeMap::new();
    let last = units.len().saturating_sub(1);
    for (i, u) in units.into_iter().enumerate() {
        let size = sizes[u];
        let split = if i == last && n_test + n_val + size == n && i > 0 {
            "train"
        } else if n_test < want_test {
            n_test += size;
            "test"
        } else if n_val < want_val {
            n_val += size;
            "val"
        } else {
            "train"
        };
        out.insert(u.clone(), split.to_string());
    }
    out
}

/// Assigns each (class, path, group) to a split. Per class, whole groups are
/// shuffled with the seed and dealt to test, then val, until each reaches its
/// share of the class's videos; the rest go to train. Pure and deterministic.
pub fn plan_split(items: &[(String, PathBuf, Option<String>)], opts: &SplitOptions) -> Vec<(String, String, PathBuf)> {
    let mut by_class: BTreeMap<&str, BTreeMap<String, Vec<&PathBuf>>> = BTreeMap::new();
    for (class, path, group) in items {
        let key = match group {
            Some(g) if opts.group_aware => g.clone(),
            _ => format!("\u{0}{}", path.display()),
        };
        by_class.entry(class.as_str()).or_default().entry(key).or_default().push(path);
    }
    let mut out = Vec::new();
    for (ci, (class, groups)) in by_class.into_iter().enumerate() {
        let n: usize = groups.values().map(|v| v.len()).sum();
        let mut keys: Vec<&String> = groups.keys().collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed.wrapping_add(ci as u64 * 0x9E37_79B9));
        keys.shuffle(&mut rng);
        let want_test = (n as f64 * opts.test).round() as usize;
        let want_val = (n as f64 * opts.val).round() as usize;
        let (mut n_test, mut n_val) = (0, 0);
        let last = keys.len().saturating_sub(1);
        for (gi, k) in keys.into_iter().enumerate() {
            let files = &groups[k];
            // Keep at least one group for training when there is more than one.
            let split = if gi == last && n_test + n_val == n - files.len() && gi > 0 {
                "train"
            } else if n_test < want_test {
                n_test += files.len();
                "test"
            } else if n_val < want_val {
                n_val += files.len();
                "val"
            } else {
                "train"
            };
            for p in files {
                out.push((split.to_string(), class.to_string(), (*p).clone()));
            }
        }
    }
    out
}
