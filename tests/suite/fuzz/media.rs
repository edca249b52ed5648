//! The dataset folder listing and video files through FFmpeg.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use vidi::dataset::index::{index_folder, ucf101_group, IndexOptions, Layout, VIDEO_EXTENSIONS};
use vidi::dataset::ClipSampler;
use vidi::video::{decode_indices, decode_time_range, probe, DecodeOptions, FrameBound, RgbFrame};

use super::{fuzz, havoc, put_int, Input, Rng, Seed, Verdict};
use crate::ffprobe_count;

// ---------------------------------------------------------------------------
// Dataset folders (the listing of class folders and file names)
// ---------------------------------------------------------------------------

/// The claims of `ucf101_group` on one file name, from the name's own shape:
/// a group `<class>_g<digits>` is found exactly when the stem is
/// `[v_]<class>_g<digits>_c<rest>` with no `_g` in `<rest>`.
fn check_group(name: &OsStr) -> Result<(), String> {
    let path = Path::new(name);
    let got = ucf101_group(path);
    let Some(stem) = path.file_stem().and_then(OsStr::to_str) else {
        return match got {
            Some(g) => Err(format!("group {g:?} of a name without a UTF-8 stem")),
            None => Ok(()),
        };
    };
    let shaped = |at: usize| {
        let rest = &stem[at + 2..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && rest[digits..].starts_with("_c") && !rest[digits + 2..].contains("_g")
    };
    match got {
        Some(g) => {
            let (_, digits) = g.rsplit_once("_g").ok_or_else(|| format!("group {g:?} of {stem:?}"))?;
            let tail = stem.strip_prefix("v_").filter(|s| s.starts_with(&g)).unwrap_or(stem);
            let ok = !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && tail.strip_prefix(g.as_str()).is_some_and(|r| r.starts_with("_c") && !r[2..].contains("_g"));
            if ok {
                Ok(())
            } else {
                Err(format!("group {g:?} of {stem:?}"))
            }
        }
        None => match stem.match_indices("_g").map(|(i, _)| i).find(|i| shaped(*i)) {
            Some(_) => Err(format!("no group found in {stem:?}")),
            None => Ok(()),
        },
    }
}

fn lossy(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn is_video(p: &Path) -> bool {
    p.extension().is_some_and(|e| VIDEO_EXTENSIONS.iter().any(|v| v.as_bytes().eq_ignore_ascii_case(e.as_bytes())))
}

/// Folders and regular files directly in `dir`, sorted.
fn listing(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        match e.file_type() {
            Ok(t) if t.is_dir() => dirs.push(e.path()),
            Ok(t) if t.is_file() => files.push(e.path()),
            _ => {}
        }
    }
    dirs.sort();
    files.sort();
    (dirs, files)
}

fn check_listing(work: &mut PathBuf, input: &Input) -> Result<Verdict, String> {
    let root = work.join("dataset");
    if root.exists() {
        std::fs::remove_dir_all(&root).expect("clear the dataset folder");
    }
    std::fs::create_dir_all(&root).expect("dataset folder");
    // Each line names a file, `<class>/<file>` or `<split>/<class>/<file>`,
    // optionally followed by a space and anything (a label number).
    for line in input.bytes.split(|b| *b == b'\n').take(64) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let path = line.split(|b| *b == b' ').next().unwrap_or_default();
        let parts: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
        let usable =
            |p: &&[u8]| !p.is_empty() && *p != &b"."[..] && *p != &b".."[..] && p.len() <= 200 && !p.contains(&0);
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(usable) {
            continue;
        }
        let Some((file, dirs)) = parts.split_last() else { continue };
        check_group(OsStr::from_bytes(file))?;
        let dir = dirs.iter().fold(root.clone(), |d, p| d.join(OsStr::from_bytes(p)));
        if std::fs::create_dir_all(&dir).is_ok() && !dir.join(OsStr::from_bytes(file)).exists() {
            let _ = std::fs::write(dir.join(OsStr::from_bytes(file)), b"");
        }
    }

    // What the folder holds, by its documented layout.
    let (top, _) = listing(&root);
    let splits: Vec<&PathBuf> = top.iter().filter(|d| ["train", "val", "test"].contains(&lossy(d).as_str())).collect();
    let class_dirs: Vec<(Option<String>, PathBuf)> = if splits.is_empty() {
        top.iter().filter(|d| !lossy(d).starts_with('.')).map(|d| (None, d.clone())).collect()
    } else {
        splits.iter().flat_map(|s| listing(s).0.into_iter().map(|c| (Some(lossy(s)), c))).collect()
    };
    let (mut samples, mut ignored, mut all_classes) = (Vec::new(), 0, BTreeSet::new());
    for (split, dir) in &class_dirs {
        all_classes.insert(lossy(dir));
        for f in listing(dir).1 {
            if is_video(&f) {
                samples.push((f, lossy(dir), split.clone()));
            } else {
                ignored += 1;
            }
        }
    }
    let got = index_folder(&root, &IndexOptions { check_readable: false, threads: 1 });
    let index = match (got, samples.is_empty()) {
        (Err(_), true) => return Ok(Verdict::Refused),
        (Ok(_), true) => return Err("indexed a folder without videos".into()),
        (Err(e), false) => return Err(format!("refused a folder with {} videos: {e}", samples.len())),
        (Ok(index), false) => index,
    };
    let classes: Vec<String> = samples.iter().map(|s| s.1.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let layout = if splits.is_empty() { Layout::Flat } else { Layout::Split };
    let empty: Vec<String> = all_classes.iter().filter(|c| !classes.contains(c)).cloned().collect();
    if index.layout != layout
        || index.classes != classes
        || index.empty_classes != empty
        || index.ignored_files != ignored
    {
        return Err(format!(
            "layout {:?}, classes {:?}, empty {:?}, {} ignored; the folder has {layout:?}, {classes:?}, {empty:?}, \
             {ignored}",
            index.layout, index.classes, index.empty_classes, index.ignored_files
        ));
    }
    let mut want: Vec<(PathBuf, String, Option<String>)> = samples;
    let mut have: Vec<(PathBuf, String, Option<String>)> =
        index.samples.iter().map(|s| (s.path.clone(), s.class.clone(), s.split.clone())).collect();
    want.sort();
    have.sort();
    if have != want {
        return Err(format!("samples {have:?}, the folder holds {want:?}"));
    }
    for s in &index.samples {
        if index.classes.get(s.label) != Some(&s.class) {
            return Err(format!("{}: label {} for class {:?}", s.path.display(), s.label, s.class));
        }
        check_group(s.path.file_name().unwrap_or_default())?;
    }
    let counted: usize = index.counts.values().flat_map(|per| per.values()).sum();
    if counted != index.samples.len() {
        return Err(format!("counts add up to {counted}, {} samples", index.samples.len()));
    }
    Ok(Verdict::Parsed)
}

fn mutate_listing(rng: &mut Rng, seed: &Seed, seeds: &[Seed]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = seed.bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    for _ in 0..1 + rng.below(3) {
        let i = rng.below(lines.len());
        match rng.below(6) {
            0 => {
                // A name of the shapes the group finder looks at.
                let class = rng.pick(&["Basketball", "v_", "_g", "a_g1_c", "Ünïcödé", "x\u{ff}"]).to_string();
                let name = format!(
                    "{}{class}_g{}_c{}{}.{}",
                    if rng.chance(1, 2) { "v_" } else { "" },
                    rng.pick(&["01", "", "7", "99999999999999999999", "x"]),
                    rng.pick(&["01", "", "_g2", "3_c4"]),
                    rng.pick(&["", "_g", ".avi"]),
                    rng.pick(&["avi", "MP4", "mkv", "txt", "", "mp4.part"])
                );
                lines[i] = format!("{class}/{name}").into_bytes();
            }
            1 => {
                let other = rng.pick(seeds);
                let line = other.bytes.split(|b| *b == b'\n').nth(rng.below(8)).unwrap_or_default().to_vec();
                lines.insert(i, line);
            }
            2 => {
                // A name that is not UTF-8.
                let at = rng.below(lines[i].len() + 1);
                lines[i].insert(at, *rng.pick(&[0xff, 0xc3, 0x80, 0xfe]));
            }
            3 => {
                let split = rng.pick(&["train/", "val/", "test/", ".git/", "Train/"]).as_bytes().to_vec();
                lines[i].splice(0..0, split);
            }
            _ => lines[i] = havoc(rng, std::mem::take(&mut lines[i]), seeds, 0),
        }
    }
    lines.join(&b'\n')
}

#[test]
fn dataset_listing() {
    fuzz("annotation", 600, |w| w.to_path_buf(), mutate_listing, check_listing);
}

// ---------------------------------------------------------------------------
// Video files through FFmpeg
// ---------------------------------------------------------------------------

/// The clips `make_seeds.py` cut from the committed fixtures.
const VIDEO_SEEDS: [&str; 3] = ["asl-6f-vp8.webm", "kinetics-8f-h264.mp4", "ucf101-6f-mpeg4.avi"];

/// The first bytes, which tell FFmpeg the container, are left alone by most mutations.
const VIDEO_HEADER: usize = 16;

/// Box and chunk names of MP4 and AVI: their size fields sit next to them.
const VIDEO_TAGS: [&[u8; 4]; 27] = [
    b"ftyp", b"moov", b"mvhd", b"trak", b"tkhd", b"edts", b"elst", b"mdia", b"mdhd", b"hdlr", b"minf", b"stbl",
    b"stsd", b"avc1", b"avcC", b"stts", b"ctts", b"stss", b"stsc", b"stsz", b"stco", b"mdat", b"LIST", b"avih",
    b"strh", b"strf", b"idx1",
];

fn mutate_video(rng: &mut Rng, seed: &Seed, seeds: &[Seed]) -> Vec<u8> {
    let mut d = seed.bytes.clone();
    let len = d.len();
    match rng.below(10) {
        0 | 1 => d.truncate(VIDEO_HEADER + rng.below(len.saturating_sub(VIDEO_HEADER))),
        2..=5 => {
            let tags: Vec<usize> =
                (0..len.saturating_sub(4)).filter(|i| VIDEO_TAGS.iter().any(|t| d[*i..*i + 4] == t[..])).collect();
            if tags.is_empty() {
                return havoc(rng, d, seeds, VIDEO_HEADER);
            }
            let at = *rng.pick(&tags);
            match rng.below(4) {
                // MP4: the box size before the name (big-endian).
                0 if at >= 4 => put_int(rng, &mut d, at - 4, 4, false),
                // AVI: the chunk size after the name (little-endian).
                1 => put_int(rng, &mut d, at + 4, 4, true),
                // A field inside the box: versions, counts, timescales, durations, sizes.
                2 => {
                    let off = at + 4 + rng.below(40);
                    let width = *rng.pick(&[1, 2, 4, 8]);
                    put_int(rng, &mut d, off, width, false);
                }
                _ => {
                    let (s, e) = ((at + 4).min(len), (at + 64).min(len));
                    let mut part = havoc(rng, d[s..e].to_vec(), seeds, 0);
                    part.resize(e - s, 0);
                    d[s..e].copy_from_slice(&part);
                }
            }
        }
        6 => {
            let other = &rng.pick(seeds).bytes;
            let i = VIDEO_HEADER + rng.below(len.saturating_sub(VIDEO_HEADER) + 1);
            let j = rng.below(other.len() + 1);
            d.truncate(i.min(len));
            d.extend_from_slice(&other[j..]);
        }
        _ => return havoc(rng, d, seeds, VIDEO_HEADER),
    }
    d
}

fn frames_ok(what: &str, frames: &[RgbFrame]) -> Result<(), String> {
    for (i, f) in frames.iter().enumerate() {
        if f.width == 0 || f.height == 0 || f.data.len() != f.width as usize * f.height as usize * 3 {
            return Err(format!("{what}: frame {i} is {}x{} with {} bytes", f.width, f.height, f.data.len()));
        }
    }
    Ok(())
}

fn check_video(work: &mut PathBuf, input: &Input) -> Result<Verdict, String> {
    let ext = Path::new(&input.base).extension().and_then(OsStr::to_str).unwrap_or("bin");
    let path = work.join(format!("clip.{ext}"));
    std::fs::write(&path, &input.bytes).expect("write input");
    let opts = DecodeOptions { threads: 1, bound: Some(FrameBound { short_side: 224 }), ..Default::default() };
    let info = probe(&path);
    if let Ok(info) = &info {
        if info.frames == 0
            || !(info.fps.is_finite() && info.fps > 0.0)
            || !(info.duration_s.is_finite() && info.duration_s >= 0.0)
        {
            return Err(format!("probe: {} frames, {} fps, {} s", info.frames, info.fps, info.duration_s));
        }
        if input.replay && VIDEO_SEEDS.contains(&input.base.as_str()) {
            let (frames, ..) = ffprobe_count(&path, "v:0");
            if frames != info.frames {
                return Err(format!("probe counted {} frames, ffprobe {frames}", info.frames));
            }
        }
        // The clip windows of evaluation, over the duration probe reports.
        let clips =
            ClipSampler::Uniform { clip_duration: 64.0 / 30.0 }.clips(info.sampling_duration_s(), &mut rand::rng());
        if clips.is_empty() {
            return Err(format!("no clip windows over {} s", info.duration_s));
        }
    }
    let last = info.as_ref().map_or(3, |i| i.frames - 1);
    if let Ok(frames) = decode_indices(&path, &[0, last], &opts) {
        if frames.len() != 2 {
            return Err(format!("{} frames for 2 indices", frames.len()));
        }
        frames_ok("decode_indices", &frames)?;
    }
    if let Ok(t) = decode_time_range(&path, 0.0, 0.25, &opts) {
        if t.window_frames != t.frames.len() {
            return Err(format!("{} frames of a {}-frame window", t.frames.len(), t.window_frames));
        }
        frames_ok("decode_time_range", &t.frames)?;
    }
    Ok(if info.is_ok() { Verdict::Parsed } else { Verdict::Refused })
}

#[test]
fn video_files() {
    fuzz("video", 800, |w| w.to_path_buf(), mutate_video, check_video);
}
