//! `vidi dataset inspect` and `vidi dataset split`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use vidi::dataset::index::{index_folder_with_progress, IndexOptions};
use vidi::dataset::split::{split_folder, SplitOptions};

use super::common::{print_json, progress_bar};

/// `vidi dataset ...`.
#[derive(Subcommand, Debug)]
pub enum DatasetCommand {
    /// Index a folder (<dir>/{train,val,test}/<Class>/* or <dir>/<Class>/*) and report on it.
    ///
    /// Lists classes (sorted, as the guide's labels), videos per split and class,
    /// unreadable files, classes with no videos, and UCF101 groups found in more
    /// than one split (data leakage).
    ///
    /// Example: vidi dataset inspect UCF101_subset --json
    Inspect(InspectArgs),
    /// Split a flat folder (<src>/<Class>/*) into <out>/{train,val,test}/<Class>/*.
    ///
    /// Group-aware: UCF101 groups (v_<Class>_gNN_cMM) never straddle splits.
    /// Files are hard-linked (copied if linking fails); the source is untouched.
    ///
    /// Example: vidi dataset split my_videos --out my_videos_split --val 0.1 --test 0.2 --seed 0
    Split(SplitArgs),
}

/// `vidi dataset inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The dataset folder.
    pub dir: PathBuf,
    /// Print JSON with classes, counts, unreadable, empty_classes, leaking_groups.
    #[arg(long)]
    pub json: bool,
    /// Do not decode every video to check it (faster; unreadable files go unnoticed).
    #[arg(long)]
    pub no_check: bool,
}

/// `vidi dataset split`.
#[derive(Args, Debug)]
pub struct SplitArgs {
    /// The flat source folder.
    pub src: PathBuf,
    /// Output folder (new or empty).
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
    let index = index_folder_with_progress(&a.dir, &opts, &mut move |done, total| {
        pb2.set_length(total as u64);
        pb2.set_position(done as u64);
    });
    pb.finish_and_clear();
    let index = index?;
    if a.json {
        return print_json(&index);
    }
    println!("{} ({:?} layout): {} classes", index.root.display(), index.layout, index.classes.len());
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
    for g in &index.leaking_groups {
        println!("leakage: group {} is in {}", g.group, g.splits.join(" and "));
    }
    if index.unreadable.is_empty() && index.leaking_groups.is_empty() && index.empty_classes.is_empty() {
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
