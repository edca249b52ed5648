//! Dataset indexing, group-aware splitting and loading on generated folders.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use vidi::dataset::index::{index_folder, IndexOptions, Layout};
use vidi::dataset::loader::{Item, Loader, LoaderOptions};
use vidi::dataset::presets::{Preset, TrainPreset, ValPreset};
use vidi::dataset::split::{split_folder, SplitOptions};

use crate::ffmpeg;

/// Writes a small H.264 clip (`secs` long, 96x72) with a distinct pattern per `seed`.
pub fn make_clip(path: &Path, seed: u32, secs: f32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let src = format!("testsrc2=size=96x72:rate=25:duration={secs},hue=h={}", seed * 37 % 360);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &src,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        path.to_str().unwrap(),
    ]);
}

/// A flat UCF101-style folder: 3 classes x 4 groups x 2 clips, plus a broken
/// file, a non-video file and an empty class folder.
fn flat_dataset(root: &Path) -> Vec<PathBuf> {
    let mut made = Vec::new();
    let mut k = 0;
    for class in ["Zebra", "Apple", "mango"] {
        for g in 1..=4 {
            for c in 1..=2 {
                let p = root.join(class).join(format!("v_{class}_g{g:02}_c{c:02}.mp4"));
                make_clip(&p, k, 1.0);
                made.push(p);
                k += 1;
            }
        }
    }
    std::fs::write(root.join("Apple/broken.avi"), b"not a video at all").unwrap();
    std::fs::write(root.join("Apple/notes.txt"), b"hello").unwrap();
    std::fs::create_dir_all(root.join("Empty")).unwrap();
    made
}

fn tree_listing(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
                out.insert(p, Vec::new());
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn index_reports_labels_counts_and_problems() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("flat");
    flat_dataset(&root);
    let idx = index_folder(&root, &IndexOptions::default()).unwrap();
    assert_eq!(idx.layout, Layout::Flat);
    // Python's sorted(): uppercase before lowercase.
    assert_eq!(idx.classes, vec!["Apple", "Zebra", "mango"]);
    assert_eq!(idx.counts["all"]["Apple"], 8);
    assert_eq!(idx.samples.len(), 24);
    assert_eq!(idx.unreadable.len(), 1);
    assert!(idx.unreadable[0].path.ends_with("Apple/broken.avi"));
    assert!(!idx.unreadable[0].reason.is_empty());
    assert_eq!(idx.empty_classes, vec!["Empty"]);
    assert_eq!(idx.ignored_files, 1);
    let s = idx.samples.iter().find(|s| s.class == "mango").unwrap();
    assert_eq!(s.label, 2);
    assert!(s.group.as_deref().unwrap().starts_with("mango_g0"));
}

/// Entries named like videos that are no files are listed with the reason,
/// never dropped in silence: a link to nothing, a link loop, a folder.
#[test]
fn index_lists_broken_links_link_loops_and_folders_named_like_videos() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    for class in ["A", "B"] {
        make_clip(&root.join(class).join("v_x_g01_c01.mp4"), 1, 0.4);
    }
    let a = root.join("A");
    std::os::unix::fs::symlink("gone.mp4", a.join("dangling.mp4")).unwrap();
    std::os::unix::fs::symlink("loop.mp4", a.join("loop.mp4")).unwrap();
    std::fs::create_dir(a.join("folder.mp4")).unwrap();
    // A link to a real clip is a video like any other.
    std::os::unix::fs::symlink(root.join("B/v_x_g01_c01.mp4"), a.join("v_y_g02_c01.mp4")).unwrap();
    let idx = index_folder(&root, &IndexOptions::default()).unwrap();
    assert_eq!(idx.counts["all"]["A"], 2, "{:?}", idx.counts);
    let listed: Vec<(String, &str)> = idx
        .unreadable
        .iter()
        .map(|u| (u.path.file_name().unwrap().to_string_lossy().into_owned(), u.reason.as_str()))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("dangling.mp4".to_string(), "a symbolic link to gone.mp4, which does not exist"),
            ("folder.mp4".to_string(), "a folder, not a video file"),
            ("loop.mp4".to_string(), "a symbolic link that loops back on itself"),
        ]
    );
    // The CLI's report names them too.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_vidi"))
        .args(["dataset", "inspect"])
        .arg(&root)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && out.contains("dangling.mp4") && out.contains("loops back"), "{out}");
}

#[test]
fn split_keeps_groups_whole_and_leaves_the_source_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("flat");
    flat_dataset(&root);
    let before = tree_listing(&root);
    let out = dir.path().join("split");
    let opts = SplitOptions { val: 0.25, test: 0.25, seed: 7, ..Default::default() };
    let report = split_folder(&root, &out, &opts).unwrap();
    assert_eq!(tree_listing(&root), before, "the source folder changed");
    assert_eq!(report.assignment.len(), 24);

    let idx = index_folder(&out, &IndexOptions::default()).unwrap();
    assert_eq!(idx.layout, Layout::Split);
    assert!(idx.leaking_groups.is_empty(), "leakage: {:?}", idx.leaking_groups);
    assert_eq!(idx.classes, vec!["Apple", "Zebra", "mango"]);
    for split in ["train", "val", "test"] {
        let n: usize = idx.counts[split].values().sum();
        assert!(n > 0, "{split} is empty");
    }
    // Every group in exactly one split, checked from the files themselves.
    let mut group_splits: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in &idx.samples {
        group_splits.entry(s.group.clone().unwrap()).or_default().insert(s.split.clone().unwrap());
    }
    assert_eq!(group_splits.len(), 12);
    assert!(group_splits.values().all(|s| s.len() == 1));

    // Same seed, same split; refusing a non-empty output.
    let out2 = dir.path().join("split2");
    let again = split_folder(&root, &out2, &opts).unwrap();
    let norm = |r: &vidi::dataset::SplitReport| r.assignment.iter().cloned().collect::<BTreeSet<_>>();
    assert_eq!(norm(&again), norm(&report));
    assert!(split_folder(&root, &out, &opts).is_err());
}

#[test]
fn index_flags_groups_leaking_across_splits() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    make_clip(&root.join("train/Archery/v_Archery_g01_c01.mp4"), 1, 1.0);
    make_clip(&root.join("test/Archery/v_Archery_g01_c02.mp4"), 2, 1.0);
    make_clip(&root.join("val/Archery/v_Archery_g02_c01.mp4"), 3, 1.0);
    let idx = index_folder(root, &IndexOptions::default()).unwrap();
    assert_eq!(idx.leaking_groups.len(), 1);
    assert_eq!(idx.leaking_groups[0].group, "Archery_g01");
    assert_eq!(idx.leaking_groups[0].splits, vec!["train", "test"]);
}

#[test]
fn empty_or_missing_folders_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = index_folder(dir.path(), &IndexOptions::default()).unwrap_err();
    assert!(e.to_string().contains("no videos found"), "{e}");
    let e = index_folder(&dir.path().join("nope"), &IndexOptions::default()).unwrap_err();
    assert!(e.to_string().contains("no such folder"), "{e}");
}

#[test]
fn loader_batches_are_shaped_and_independent_of_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut items = Vec::new();
    for i in 0..5u32 {
        let p = dir.path().join(format!("c{i}.mp4"));
        make_clip(&p, i, 3.0);
        items.push(Item { path: p, label: i as usize % 2, duration_s: None });
    }
    items.push(Item { path: dir.path().join("missing.mp4"), label: 0, duration_s: None });
    let preset = Preset::Train(TrainPreset {
        num_frames: 4,
        crop: 48,
        min_short_side: 56,
        max_short_side: 64,
        ..Default::default()
    });
    let run = |workers| {
        let opts = LoaderOptions { batch_size: 2, workers, prefetch: 1, shuffle: true, seed: 11, epoch: 1, start: 0 };
        Loader::new(items.clone(), preset.clone(), &opts).collect::<Vec<_>>()
    };
    let a = run(1);
    let b = run(3);
    assert_eq!(a.len(), 3);
    let total: usize = a.iter().map(|x| x.labels.len()).sum();
    assert_eq!(total, 5);
    let skipped: Vec<_> = a.iter().flat_map(|x| x.skipped.clone()).collect();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].0.ends_with("missing.mp4"));
    assert_eq!(a[0].shape, [2, 4, 3, 48, 48]);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.pixel_values, y.pixel_values);
        assert_eq!(x.labels, y.labels);
        assert_eq!(x.paths, y.paths);
    }
    // Another epoch draws other clips.
    let opts = LoaderOptions { batch_size: 2, workers: 2, prefetch: 1, shuffle: true, seed: 11, epoch: 2, start: 0 };
    let c: Vec<_> = Loader::new(items.clone(), preset.clone(), &opts).collect();
    assert_ne!(c[0].pixel_values, a[0].pixel_values);

    // The val preset yields every uniform clip: 3 s videos hold one 64/30 s clip each.
    let val = Preset::Val(ValPreset { num_frames: 4, sample_rate: 16, resize: (32, 32), ..Default::default() });
    let opts = LoaderOptions { batch_size: 4, workers: 2, ..Default::default() };
    let v: Vec<_> = Loader::new(items[..5].to_vec(), val, &opts).collect();
    assert_eq!(v.iter().map(|x| x.labels.len()).sum::<usize>(), 5);
    assert_eq!(v[0].shape, [4, 4, 3, 32, 32]);
}
