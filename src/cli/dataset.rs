//! `vidi dataset inspect` and `vidi dataset split`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use vidi::dataset::index::IndexOptions;
use vidi::dataset::split::{split_annotations, split_folder, SplitOptions};
use vidi::dataset::{index_source, DataSource};

use super::common::{print_json, progress_bar};

/// `vidi dataset ...`.
#[derive(Subcommand, Debug)]
pub enum DatasetCommand {
    /// Index a dataset and report on it: a folder (<dir>/{train,val,test}/<Class>/* or
    /// <dir>/<Class>/*), a folder of videos with split lists, or an annotation file.
    ///
    /// Lists classes (sorted, as the guide's labels, or a classes file's order), samples
    /// per split and class, unreadable files and skipped rows (with the reason), problems
    /// in the lists, classes with no videos, class imbalance (the largest class over 3x
    /// the smallest), and UCF101 groups found in more than one split (data leakage).
    ///
    /// Lists and annotation files are told apart by content: UCF101's classInd.txt,
    /// trainlist0N.txt and testlist0N.txt; HMDB51's <class>_test_splitN.txt; mmaction2's
    /// "path label_index" lists; CSV with a header (video/path/file/filename,
    /// label/class, optional start/end or time_start/time_end in seconds, split, group);
    /// Kinetics CSVs; Something-Something v2's train.json/validation.json with labels.json.
    /// A row with start and end times is a sample of its own: only that range is used.
    ///
    /// Examples:
    ///   vidi dataset inspect UCF101_subset --json
    ///   vidi dataset inspect UCF-101 --classes classInd.txt --train trainlist01.txt --test testlist01.txt
    ///   vidi dataset inspect segments.csv --json
    Inspect(InspectArgs),
    /// Split a flat folder (<src>/<Class>/*) into <out>/{train,val,test}/<Class>/*.
    ///
    /// Group-aware: UCF101 groups (v_<Class>_gNN_cMM) never straddle splits.
    /// Files are hard-linked (copied if linking fails); the source is untouched.
    ///
    /// A CSV without a split column (videos or segments) is split into a new CSV with one:
    /// groups stay whole (its group column, else UCF101 names), and so do the segments
    /// of each video, across classes.
    ///
    /// Examples:
    ///   vidi dataset split my_videos --out my_videos_split --val 0.1 --test 0.2 --seed 0
    ///   vidi dataset split segments.csv --out segments_split.csv --seed 0
    Split(SplitArgs),
}

/// Split lists and a classes file read with a folder of videos (`--classes`, `--train`, `--val`, `--test`).
#[derive(Args, Debug, Clone, Default)]
pub struct ListArgs {
    /// Classes file of the lists: classInd.txt ("1 Name" lines, the label ids), one name per
    /// line (mmaction2; ids from 0), or Something-Something's labels.json.
    #[arg(long, value_name = "FILE")]
    pub classes: Option<PathBuf>,
    /// Lists of the train split (UCF101 trainlist, mmaction2 list, CSV, JSON...). Paths in a
    /// list are relative to the videos folder, or else to the list's own folder. HMDB51
    /// split files and CSVs with a split column put each row in the split it names.
    #[arg(long = "train", value_name = "LIST", num_args = 1.., action = clap::ArgAction::Append)]
    pub train_lists: Vec<PathBuf>,
    /// Lists of the val split.
    #[arg(long = "val", value_name = "LIST", num_args = 1.., action = clap::ArgAction::Append)]
    pub val_lists: Vec<PathBuf>,
    /// Lists of the test split (a UCF101 testlist has no labels: the path's folder names the class).
    #[arg(long = "test", value_name = "LIST", num_args = 1.., action = clap::ArgAction::Append)]
    pub test_lists: Vec<PathBuf>,
}

impl ListArgs {
    /// The dataset source: `path` with these lists.
    pub fn source(&self, path: &std::path::Path) -> DataSource {
        DataSource {
            path: path.to_path_buf(),
            classes: self.classes.clone(),
            train: self.train_lists.clone(),
            val: self.val_lists.clone(),
            test: self.test_lists.clone(),
        }
    }
}

/// `vidi dataset inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The dataset: a folder, a folder of videos the lists name, or an annotation file.
    pub dir: PathBuf,
    #[command(flatten)]
    pub lists: ListArgs,
    /// Print JSON with format, classes, counts, class_counts, segments, unreadable, problems,
    /// warnings, empty_classes, leaking_groups.
    #[arg(long)]
    pub json: bool,
    /// Do not decode every video to check it (faster; unreadable files go unnoticed).
    #[arg(long)]
    pub no_check: bool,
}

/// `vidi dataset split`.
#[derive(Args, Debug)]
pub struct SplitArgs {
    /// The flat source folder, or a CSV without a split column.
    pub src: PathBuf,
    /// Output folder (new or empty), or for a CSV the new CSV to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Share of each class for validation.
    #[arg(long, default_value_t = 0.1)]
    pub val: f64,
    /// Share of each class for test.
    #[arg(long, default_value_t = 0.2)]
    pub test: f64,
    /// Seed of the shuffle (same seed, same split).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Copy files instead of hard-linking them.
    #[arg(long)]
    pub copy: bool,
    /// Ignore UCF101 groups (only for data without shared scenes).
    #[arg(long)]
    pub no_groups: bool,
    /// Print the split report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn inspect(a: InspectArgs) -> Result<()> {
    let pb = progress_bar(0, "checking videos");
    let opts = IndexOptions { check_readable: !a.no_check, ..Default::default() };
    let pb2 = pb.clone();
    let index = index_source(&a.lists.source(&a.dir), &opts, &mut move |done, total| {
        pb2.set_length(total as u64);
        pb2.set_position(done as u64);
    });
    pb.finish_and_clear();
    let index = index?;
    if a.json {
        return print_json(&index);
    }
    let from = if index.format == "folder" { format!("{:?} layout", index.layout) } else { index.format.clone() };
    let segments = match index.segments {
        0 => String::new(),
        n => format!(", {n} segments"),
    };
    println!("{} ({from}): {} classes{segments}", index.root.display(), index.classes.len());
    let splits: Vec<&String> = index.counts.keys().collect();
    let name_w = index.classes.iter().map(|c| c.len()).max().unwrap_or(5).max(5);
    print!("{:name_w$}", "class");
    for s in &splits {
        print!(" {s:>6}");
    }
    println!();
    for c in &index.classes {
        print!("{c:name_w$}");
        for s in &splits {
            print!(" {:>6}", index.counts[*s].get(c).copied().unwrap_or(0));
        }
        println!();
    }
    print!("{:name_w$}", "total");
    for s in &splits {
        print!(" {:>6}", index.counts[*s].values().sum::<usize>());
    }
    println!();
    for c in &index.empty_classes {
        println!("warning: class folder '{c}' has no readable videos");
    }
    for u in &index.unreadable {
        println!("unreadable (skipped): {}: {}", u.path.display(), u.reason);
    }
    for p in &index.problems {
        let at = p.line.map(|l| format!(" line {l}")).unwrap_or_default();
        println!("problem (skipped): {}{at}: {}", p.file.display(), p.message);
    }
    for g in &index.leaking_groups {
        println!("leakage: group {} is in {}", g.group, g.splits.join(" and "));
    }
    for w in &index.warnings {
        println!("warning: {w}");
    }
    if index.unreadable.is_empty()
        && index.leaking_groups.is_empty()
        && index.empty_classes.is_empty()
        && index.problems.is_empty()
        && index.warnings.is_empty()
    {
        println!("no problems found");
    }
    Ok(())
}

pub fn split(a: SplitArgs) -> Result<()> {
    let opts = SplitOptions {
        val: a.val,
        test: a.test,
        seed: a.seed,
        copy: a.copy,
        group_aware: !a.no_groups,
        check_readable: true,
    };
    if a.src.is_file() {
        let report = split_annotations(&a.src, &a.out, &opts)?;
        if a.json {
            return print_json(&report);
        }
        for (split, per) in &report.counts {
            println!("{split}: {} samples in {} classes", per.values().sum::<usize>(), per.len());
        }
        println!("wrote {} ({} rows with a split column)", report.out.display(), report.assignment.len());
        return Ok(());
    }
    let report = split_folder(&a.src, &a.out, &opts)?;
    if a.json {
        return print_json(&report);
    }
    for (split, per) in &report.counts {
        println!("{split}: {} videos in {} classes", per.values().sum::<usize>(), per.len());
    }
    println!(
        "wrote {} ({} files {}; manifest in split.json)",
        report.out.display(),
        report.assignment.len(),
        if report.copied == report.assignment.len() {
            "copied".to_string()
        } else {
            format!("linked, {} copied", report.copied)
        }
    );
    Ok(())
}
